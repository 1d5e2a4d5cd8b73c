"""Reconstruction term of the Conv AE and UNet (actdiff spec §4.5)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from repro.methods import Penalty, StepContext, register_penalty
from repro.papers.actdiff.masking import shuffled


@register_penalty("recon")
class ReconstructionPenalty(Penalty):
    """BCE (sigmoid output, synthetic) or MSE (linear output, MSD) against the input or, for
    Reconstruct Masked, against the ROI-shuffled input."""

    def __init__(self, loss: str = "bce", target: str = "input"):
        if loss not in ("bce", "mse") or target not in ("input", "shuffled"):
            raise ValueError(f"reconstruction loss/target must be bce|mse and input|shuffled, not {loss}/{target}")
        self.loss = F.binary_cross_entropy if loss == "bce" else F.mse_loss
        self.target = target
        self.pure = target != "shuffled"  # the shuffled target draws each member's generator

    def __call__(self, ctx: StepContext) -> Tensor:
        if ctx.recon is None:
            raise ValueError("a reconstruction term needs a model with a decoder (Conv AE or UNet)")
        target = shuffled(ctx) if self.target == "shuffled" else ctx.x.detach()
        return self.loss(ctx.recon, target, reduction="none").flatten(1).mean(1)
