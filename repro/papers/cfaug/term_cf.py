"""CF: counterfactual images (the eligible originals with their object removed, spec §5.3) and their loss
ℓ_cf against their originals' class (§5.2). Registered as "cfaug.cf"."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from repro.methods import register_method
from repro.papers.cfaug.generators import counterfactual
from repro.papers.cfaug.settings import CF_FORMS, CF_LOSS_KINDS
from repro.papers.cfaug.terms import Augmentation, TermBatch


def cf_loss(logits: Tensor, c: Tensor, kind: str = "logp", form: str = "stable") -> Tensor:
    """Per-sample loss of CF images of class c (§5.2), shape (N,).

    `logp` (paper/code): -log(1 - softmax(z)_c) = -[log(R + 1e-20) - log(sum_k e^(z_k-M) + 1e-20)], M = max_k z_k,
    with R = 1 - p_c unnormalised: `form` (C-27) "stable" R = sum_{k!=c} e^(z_k-M) (spec §5.2), "code"
    R = sum_k e^(z_k-M) - e^(z_c-M), which cancels to 0 in fp32 once 1 - p_c < ~6e-8 (loss 20 ln 10 + log
    sum_k e^(z_k-M), ~46.05, with gradients ~1e20 e^(z_k-M)). Two classes: CE against the other class (both forms).
    `uni`: -(1/C) sum_k log p_k; `uni_e`: -(1/(C-1)) sum_{k!=c} log p_k.
    """
    if form not in CF_FORMS:
        raise ValueError(f"cf_loss form must be one of {CF_FORMS}, not {form!r}")
    z = logits.float()
    is_c = F.one_hot(c, z.shape[1]).bool()
    if kind == "logp":
        if z.shape[1] == 2:
            return F.cross_entropy(z, 1 - c, reduction="none")
        e = (z - z.amax(1, keepdim=True)).exp()
        total = e.sum(1)
        rest = e.masked_fill(is_c, 0).sum(1) if form == "stable" else total - e[is_c]
        return -((rest + 1e-20).log() - (total + 1e-20).log())
    logp = z.log_softmax(1)
    if kind == "uni":
        return -logp.mean(1)
    if kind == "uni_e":
        return -logp.masked_fill(is_c, 0).sum(1) / (z.shape[1] - 1)
    raise ValueError(f"cf_loss kind must be one of {CF_LOSS_KINDS}, not {kind!r}")


@register_method("cfaug.cf")
class Counterfactual(Augmentation):
    """CF images by the infill `method.cf` (CAGAN: the batch's precomputed images, key "cagan"), part "cf"."""

    part = "cf"

    def images(self, tb: TermBatch) -> Tensor:
        m, idx = self.method, tb.eligible
        if m.cf == "cagan" and "cagan" not in tb.batch:
            raise ValueError("CF 'cagan' needs a batch built with CAGAN infills (key 'cagan')")
        cagan = tb.batch["cagan"][idx] if m.cf == "cagan" else None
        return counterfactual(m.cf, tb.x[idx], tb.mask[idx], tb.gen, cagan=cagan, shuffle=m.shuffle,
                              tile_x0_bug=m.tile_x0_bug, tile_bbox=m.tile_bbox, rectangle=m.cf_rectangle)

    def loss_sum(self, logits: Tensor, y: Tensor) -> Tensor:
        return cf_loss(logits, y, self.method.cf_loss, self.method.cf_form).sum()
