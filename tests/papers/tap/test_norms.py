"""Composite batch norm (repro.papers.tap.norms): PyTorch's function and running statistics, any derivative order."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repro.papers.tap.norms import composite_batch_norm


def _full_rbr_chain(net: nn.Module, x: torch.Tensor) -> None:
    """RBR's backward with the full influence: d/dtheta of (d/dx sum_theta dCE/dtheta)^2."""
    x = x.clone().requires_grad_(True)
    ce = F.cross_entropy(net(x), torch.tensor([0, 1, 1]))
    grads = torch.autograd.grad(ce, list(net.parameters()), create_graph=True)
    (d,) = torch.autograd.grad(sum(g.sum() for g in grads), x, create_graph=True)
    d.square().sum().backward()


@pytest.mark.parametrize("training", [True, False])
def test_composite_batch_norm_is_pytorchs_with_a_third_derivative(training):
    torch.manual_seed(0)
    native = nn.Sequential(nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(100, 2)).double()
    with torch.no_grad():
        native[0].weight.uniform_(0.5, 2)
        native[0].bias.uniform_(-1, 1)
        native[0].running_mean.uniform_(-1, 1)
        native[0].running_var.uniform_(0.5, 2)
    native.train(training)
    ours = copy.deepcopy(native)
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    with composite_batch_norm():
        got = ours(x)
    torch.testing.assert_close(got, native(x))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(ours[0], name), getattr(native[0], name))
    if training:  # why the composite exists (in eval mode the native kernel is affine and has them all)
        with pytest.raises(RuntimeError, match="3rd"):
            _full_rbr_chain(native, x)
    with composite_batch_norm():
        _full_rbr_chain(ours, x)
    assert all(torch.isfinite(p.grad).all() for p in ours.parameters())
    assert F.batch_norm.__module__ == "torch.nn.functional"  # restored on exit
