"""cfaug's objective (spec §5.1, §11): its terms composed into one batch's loss, each term one file and one
registry entry (`repro.papers.cfaug.terms`; the paper's CF, F, Sal, Mixup and LS, registered on this module's
import, their loss functions re-exported here).

Models follow the repro convention and return `(logits, aux)`; only `model(x)[0]` is used here. Losses are
computed in float32 (the engine's step may run the objective in fp16, C-10; the 1e-20 of the CF loss needs fp32).
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.methods import method as registered
from repro.methods import register_method
from repro.papers.cfaug.settings import CF_FORMS, CfaugMethod
from repro.papers.cfaug.term_cf import Counterfactual, cf_loss
from repro.papers.cfaug.term_f import Factual
from repro.papers.cfaug.term_ls import LabelSmoothing, label_smoothing_loss
from repro.papers.cfaug.term_mixup import Mixup, mixup, mixup_loss
from repro.papers.cfaug.term_sal import Saliency, sal_penalty
from repro.papers.cfaug.terms import Augmentation, Regulariser, Term, TermBatch, WholeLoss

__all__ = ["CF_FORMS", "CfaugMethod", "CfaugObjective", "Counterfactual", "Factual", "LabelSmoothing", "Mixup",
           "Saliency", "cf_loss", "label_smoothing_loss", "mixup", "mixup_loss", "sal_penalty", "step_loss"]


def _term(name: str, method: CfaugMethod, args: dict) -> Term:
    entry = registered(name)
    if not (isinstance(entry, type) and issubclass(entry, Term)):
        raise ValueError(f"{name!r} is not a cfaug term (a `repro.papers.cfaug.terms` class registered by name)")
    return entry(method, **args)


def _ce_sum(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits.float(), y, reduction="sum")


def _safe_mean(total: Tensor, n: int) -> Tensor:
    return total / max(n, 1)


@register_method("cfaug")
class CfaugObjective:
    """cfaug's method as the engine's objective (`repro.engine.Step`): one batch (a dict on the device) and the
    run's generator -> the total loss and its detached parts, which sum to it, for the settings `method`.

    The augmentations make their images in the terms' order (CF before F, from the same augmented originals,
    for the has_bbox rows only, C-15; F(FGSM) attacks the current weights). Without a regulariser's own forward,
    one forward on all N = B + K_cf + K_f images; with Sal the originals' logits come from its forward and the
    other images get a second one. The loss is assembled as §5.1 writes it: the originals' CE, the labelled
    images' (F), the others' (CF), then the regularisers (Sal, lambda * penalty). `joint` (code, C-4): ce = the
    summed CE over the originals and F images / N, cf = the summed cf_loss / N (without CF images this is the
    plain mean CE; the batch always holds its B originals, so the code's only-CF case cannot arise); `separate`
    (paper): ce, f, cf each the mean over its own images. A whole-loss term (Mixup, LS) is the loss alone.
    Parts: "ce", plus each term's part ("f", "cf", "sal") where it applies.
    """

    def __init__(self, method: CfaugMethod):
        self.method = method
        self.terms = [_term(name, method, args) for name, args in method.term_specs()]
        whole = [t for t in self.terms if isinstance(t, WholeLoss)]
        if whole and len(self.terms) > 1:
            raise ValueError(f"cfaug: a whole-loss term (Mixup, LS) combines with no other term; got "
                             f"{[name for name, _ in method.term_specs()]}")
        self.whole = whole[0] if whole else None
        self.augmentations = [t for t in self.terms if isinstance(t, Augmentation)]
        self.regularisers = [t for t in self.terms if isinstance(t, Regulariser)]
        own = [t for t in self.regularisers if t.own_forward]
        if len(own) > 1:
            raise ValueError("cfaug: at most one term may forward the originals itself")
        self.own_forward = own[0] if own else None
        parts = ["ce", *(t.part for t in self.augmentations + self.regularisers)]
        if len(set(parts)) < len(parts):
            raise ValueError(f"cfaug: terms with the same part name: {parts}")

    def __call__(self, model: nn.Module, batch: Mapping[str, Tensor], gen: torch.Generator
                 ) -> tuple[Tensor, dict[str, Tensor]]:
        tb = TermBatch(model, batch, gen)
        if self.whole is not None:
            loss = self.whole(tb)
            return loss, {"ce": loss.detach()}
        k = int(tb.eligible.numel()) if self.augmentations else 0
        extra = [t.images(tb) for t in self.augmentations] if k else []
        if self.own_forward is not None:
            tb.logits = self.own_forward.forward(tb)
            logits_x = model(torch.cat(extra))[0] if extra else tb.logits[:0]
        else:
            logits = model(torch.cat([tb.x, *extra]))[0]
            tb.logits, logits_x = logits[: len(tb.x)], logits[len(tb.x):]
        parts = self._parts(tb, logits_x, k)
        total = torch.stack(list(parts.values())).sum()
        return total, {name: v.detach() for name, v in parts.items()}

    def _parts(self, tb: TermBatch, logits_x: Tensor, k: int) -> dict[str, Tensor]:
        """The loss's parts, normalised by `loss_norm`: each augmentation's images are k rows of `logits_x`,
        in the terms' order."""
        rows = {t: logits_x[i * k: (i + 1) * k] for i, t in enumerate(self.augmentations)}
        y_k = tb.y[tb.eligible]
        order = [t for t in self.augmentations if t.labelled] + [t for t in self.augmentations if not t.labelled]
        ce_o = _ce_sum(tb.logits, tb.y)
        sums = {t: t.loss_sum(rows[t], y_k[:k]) for t in order}
        parts: dict[str, Tensor] = {}
        if self.method.loss_norm == "joint":
            n = len(tb.x) + k * len(order)
            ce = ce_o
            for t in order:
                if t.labelled:
                    ce = ce + sums[t]
            parts["ce"] = ce / n
            parts |= {t.part: sums[t] / n for t in order if not t.labelled}
        else:
            parts["ce"] = ce_o / len(tb.x)
            parts |= {t.part: _safe_mean(sums[t], k) for t in order}
        for r in self.regularisers:
            parts[r.part] = r(tb)
        return parts


def step_loss(model: nn.Module, batch: Mapping[str, Tensor], method: CfaugMethod,
              gen: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
    """Total training loss of one batch (§5.1) and its detached parts: `CfaugObjective(method)` on it."""
    return CfaugObjective(method)(model, batch, gen)
