"""Gradmask: penalise the input gradient of the logit contrast outside the ROI (actdiff spec §4.4)."""

from __future__ import annotations

from torch import Tensor

from repro.methods import Penalty, StepContext, register_penalty
from repro.papers.actdiff.saliency import contrast_saliency


@register_penalty("gradmask")
class GradmaskPenalty(Penalty):
    """`norm="l1"` (code, A-6): sum over batch and pixels of |g * O|; `"l2"` (paper): sum over samples of ||g * O||_2."""

    needs_input_grad = True
    reduce = "sum"

    def __init__(self, norm: str = "l1"):
        if norm not in ("l1", "l2"):
            raise ValueError(f"gradmask norm must be l1 or l2, not {norm!r}")
        self.norm = norm

    def __call__(self, ctx: StepContext) -> Tensor:
        g = contrast_saliency(ctx.logits, ctx.x) * ctx.outside
        if self.norm == "l1":
            return g.abs().flatten(1).sum(1)
        return g.flatten(1).norm(dim=1)
