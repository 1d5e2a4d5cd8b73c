"""Mixup, a baseline (spec §5.6): the whole loss on a batch mixed with its own permutation. Registered as
"cfaug.mixup"; alpha = `method.mixup`."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from repro.methods import register_method
from repro.papers.cfaug.terms import TermBatch, WholeLoss


def mixup(x: Tensor, y: Tensor, alpha: float, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor, float]:
    """One lam ~ Beta(alpha, alpha) per batch (lam = 1 for alpha <= 0) and a permutation pi: (lam x + (1-lam) x_pi,
    y, y_pi, lam). The Beta draw uses numpy seeded from `gen` (torch has no seeded Beta sampler)."""
    seed = int(torch.randint(2**62, (1,), generator=gen, device=gen.device))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha)) if alpha > 0 else 1.0
    perm = torch.randperm(x.shape[0], generator=gen, device=gen.device).to(x.device)
    return lam * x + (1 - lam) * x[perm], y, y[perm], lam


def mixup_loss(logits: Tensor, y: Tensor, y_perm: Tensor, lam: float) -> Tensor:
    """lam*CE(z, y) + (1-lam)*CE(z, y_pi), batch means (§5.6)."""
    z = logits.float()
    return lam * F.cross_entropy(z, y) + (1 - lam) * F.cross_entropy(z, y_perm)


@register_method("cfaug.mixup")
class Mixup(WholeLoss):
    """Mixup's loss on the mixed batch (one Beta draw and one permutation from the run's generator)."""

    def __call__(self, tb: TermBatch) -> Tensor:
        xm, ya, yb, lam = mixup(tb.x, tb.y, self.method.mixup, tb.gen)
        return mixup_loss(tb.model(xm)[0], ya, yb, lam)
