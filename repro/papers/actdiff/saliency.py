"""Input-gradient saliency: differentiable inside losses (gradmask) and figure-grade maps."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def contrast_saliency(logits: Tensor, x: Tensor, create_graph: bool = True) -> Tensor:
    """d sum_b |z_b0 - z_b1| / dx on raw logits; with `create_graph` it stays differentiable (double backprop)."""
    contrast = (logits[:, 0] - logits[:, 1]).abs().sum()
    return torch.autograd.grad(contrast, x, create_graph=create_graph)[0]


def positive_saliency(logits: Tensor, x: Tensor) -> Tensor:
    """d sum_b |z_b1| / dx: the paper's d|y_i|/dx for the positive class ("nonhealthy" in the code)."""
    return torch.autograd.grad(logits[:, 1].abs().sum(), x)[0]


def saliency_maps(model: nn.Module, x: Tensor) -> dict[str, Tensor]:
    """|contrast| and |nonhealthy| input-gradient maps of an eval-mode model, one image at a time (A-13)."""
    model.eval()
    out: dict[str, list[Tensor]] = {"contrast": [], "nonhealthy": []}
    for i in range(len(x)):
        xi = x[i:i + 1].detach().clone().requires_grad_(True)
        out["contrast"].append(contrast_saliency(model(xi)[0], xi, create_graph=False).abs())
        out["nonhealthy"].append(positive_saliency(model(xi)[0], xi).abs())
    return {k: torch.cat(v).detach() for k, v in out.items()}
