"""Batch norm from elementary tensor ops, for objectives that differentiate a training step three times.

PyTorch's native batch-norm kernel has a first and a second derivative but no third ("batch_norm does not
support 3rd+ order derivatives"). RBR with the full influence function (tap spec §4.4, D-9 `full`) needs one
on every model with BatchNorm (ResNet-18, DenseNet-121): the parameter gradients are differentiated with
respect to the input, and the result is differentiated again by the optimiser's backward. Inside
`composite_batch_norm()`, every `nn.BatchNorm*` forward computes the same function (batch statistics in
training with the running statistics updated as PyTorch does, running statistics in eval) from means,
variances and elementwise ops, which autograd differentiates to any order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor


def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """`torch.nn.functional.batch_norm`'s semantics in elementary ops (channels on dim 1)."""
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    if training or running_mean is None:
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        if training and running_mean is not None:
            n = x.numel() // x.shape[1]
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
                running_var.mul_(1 - momentum).add_(momentum * var.detach() * n / max(n - 1, 1))
    else:
        mean, var = running_mean, running_var
    out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + eps)
    if weight is not None:
        out = out * weight.view(shape)
    if bias is not None:
        out = out + bias.view(shape)
    return out


@contextmanager
def composite_batch_norm() -> Iterator[None]:
    """While active, `nn.BatchNorm*` modules (which call `F.batch_norm`) use `batch_norm` above."""
    native = F.batch_norm
    F.batch_norm = batch_norm
    try:
        yield
    finally:
        F.batch_norm = native
