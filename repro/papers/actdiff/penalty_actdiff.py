"""Actdiff: distance between the activations of the ROI-shuffled input and of the input (actdiff spec §4.3)."""

from __future__ import annotations

import torch
from torch import Tensor

from repro.methods import Penalty, StepContext, register_penalty
from repro.papers.actdiff.masking import shuffled

EPS = 1e-6  # added to the difference, as 2019-era nn.PairwiseDistance did


def channel_l2_distance(masked: list[Tensor], clean: list[Tensor]) -> Tensor:
    """Code variant (A-7): L2 over channels at every position, one mean over all positions of all layers
    (per sample here; every sample has as many positions, so the batch mean is the code's single mean).

    Written out explicitly: modern `nn.PairwiseDistance` reduces 4-D inputs over the last dim instead.
    """
    dists = [((a - b + EPS) ** 2).sum(dim=1).sqrt().flatten(1) for a, b in zip(masked, clean)]
    return torch.cat(dists, dim=1).mean(1)


def layer_l2_distance(masked: list[Tensor], clean: list[Tensor]) -> Tensor:
    """Paper variant (Eq. 1): per sample, the mean over layers of the L2 norm of the whole layer difference."""
    per_layer = [(a - b).flatten(1).norm(dim=1) for a, b in zip(masked, clean)]
    return torch.stack(per_layer).mean(dim=0)


DISTANCES = {"code_channel_l2": channel_l2_distance, "paper_layer_l2": layer_l2_distance}


@register_penalty("actdiff")
class ActdiffPenalty(Penalty):
    """Both forward passes run in train mode and keep their graph; the masked pass runs first."""

    needs_activations = True
    pure = False  # the masked pass moves BatchNorm statistics and draws each member's generator

    def __init__(self, distance: str = "code_channel_l2"):
        self.distance = DISTANCES[distance]
        self.masked_activations: list[Tensor] = []

    def prepare(self, ctx: StepContext) -> None:
        ctx.model.record = True
        ctx.model(shuffled(ctx))
        self.masked_activations = ctx.model.activations

    def __call__(self, ctx: StepContext) -> Tensor:
        return self.distance(self.masked_activations, ctx.activations)
