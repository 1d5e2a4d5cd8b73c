"""F: factual images (the eligible originals with their background replaced, spec §5.4) and their CE against
their originals' class. Registered as "cfaug.f"."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from repro.methods import register_method
from repro.papers.cfaug.generators import factual
from repro.papers.cfaug.terms import Augmentation, TermBatch


@register_method("cfaug.f")
class Factual(Augmentation):
    """F images by the infill `method.f` (FGSM attacks the current weights, §11), part "f" (joint: in "ce")."""

    part = "f"
    labelled = True

    def images(self, tb: TermBatch) -> Tensor:
        m, idx = self.method, tb.eligible
        return factual(m.f, tb.x[idx], tb.mask[idx], tb.y[idx], tb.gen, model=tb.model, eps=m.fgsm_eps,
                       shuffle=m.shuffle, tile_x0_bug=m.tile_x0_bug)

    def loss_sum(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), y, reduction="sum")
