"""Label smoothing, a baseline (spec §5.6): the whole loss against smoothed labels. Registered as "cfaug.ls";
eps = `method.ls`."""

from __future__ import annotations

from torch import Tensor

from repro.methods import register_method
from repro.papers.cfaug.terms import TermBatch, WholeLoss


def label_smoothing_loss(logits: Tensor, y: Tensor, eps: float) -> Tensor:
    """Batch mean of eps*(1/C)sum_k(-log p_k) + (1-eps)*(-log p_y) (§5.6; the eps mass also covers y)."""
    logp = logits.float().log_softmax(1)
    nll = -logp.gather(1, y[:, None])[:, 0]
    return (eps * -logp.mean(1) + (1 - eps) * nll).mean()


@register_method("cfaug.ls")
class LabelSmoothing(WholeLoss):
    """The label-smoothed CE of the batch."""

    def __call__(self, tb: TermBatch) -> Tensor:
        return label_smoothing_loss(tb.model(tb.x)[0], tb.y, self.method.ls)
