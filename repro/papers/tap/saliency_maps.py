"""Figure-grade maps of a staged TAP model (tap spec §1.3 Fig. 1, §5 "Extended overlap analyses"): the input
gradient IG = |d/dx sum_k log_softmax(f(x))_k| summed over channels, and per targeted stage the channel sum of
its output, nearest-upsampled to the input size. Plain first-order gradients (no double-backprop graph)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from repro.papers.tap.model_tap_cnn import StagedNet


def stage_maps(model: StagedNet, x: Tensor, batch: int = 16) -> dict[str, Tensor]:
    """{"ig": (N, H, W), "act1".."actL": (N, H, W)} for inputs x (N, C, H, W), on x's device, detached.

    One eval-mode forward per chunk of `batch` images records the stage outputs and gives the gradient of
    the summed log-softmax over all classes; the model's mode and `record` flag are restored afterwards."""
    was_training, was_recording = model.training, model.record
    model.eval()
    model.record = True
    chunks: dict[str, list[Tensor]] = {}
    try:
        for i in range(0, len(x), batch):
            xi = x[i:i + batch].detach().clone().requires_grad_(True)
            logits = model(xi)[0]
            (grad,) = torch.autograd.grad(F.log_softmax(logits, 1).sum(), xi)
            chunks.setdefault("ig", []).append(grad.abs().sum(1))
            for depth, act in enumerate(model.activations, 1):
                summed = act.detach().sum(1, keepdim=True)
                chunks.setdefault(f"act{depth}", []).append(
                    F.interpolate(summed, size=x.shape[-2:], mode="nearest")[:, 0])
    finally:
        model.train(was_training)
        model.record = was_recording
        model.activations = []
    return {name: torch.cat(parts) for name, parts in chunks.items()}
