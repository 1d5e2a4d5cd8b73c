"""Evaluation metrics of the cfaug paper (spec §7), all in %: accuracy, CCT macro AUC (C-23), Table 3's
next-class shift, the scatter figures' R², and the optional extras of §7.6.

`acc_pct` and `macro_auc` are also registered in `repro.metrics` (options: `{"macro_auc": {"scores": ...}}`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from repro.metrics.groups import group_accuracies
from repro.metrics import register_metric

AUC_SCORES = ("logits", "softmax")


@register_metric("acc_pct")
def accuracy(logits: Tensor, y: Tensor) -> float:
    """Top-1 accuracy in % (§7.1)."""
    return 100 * (logits.argmax(1) == y).double().mean().item()


@register_metric("macro_auc")
def macro_auc(logits: Tensor, y: Tensor, scores: str = "logits") -> float:
    """Macro one-vs-rest ROC-AUC × 100 over the classes present in `y` (§7.2): one-hot labels against raw
    logits (code, C-23) or `scores="softmax"`. NaN when fewer than two classes are present."""
    from sklearn.metrics import roc_auc_score

    if scores not in AUC_SCORES:
        raise ValueError(f"scores must be one of {', '.join(AUC_SCORES)}, not {scores!r}")
    s = logits.softmax(1) if scores == "softmax" else logits
    onehot = F.one_hot(y.long(), logits.shape[1])
    present = onehot.any(0)
    if present.sum() < 2:
        return math.nan
    return 100 * float(roc_auc_score(onehot[:, present].cpu().numpy(), s[:, present].double().cpu().numpy(),
                                     average="macro"))


def next_class_shift(next_logits: Tensor, next_y: Tensor, orig_logits: Tensor, orig_y: Tensor) -> float:
    """Table 3's ΔP (§7.4): 100 × [mean p_{(y+1) mod C} on Mixed-Next − the same mean on Original]."""

    def p_next(logits: Tensor, y: Tensor) -> Tensor:
        nxt = (y.long() + 1) % logits.shape[1]
        return logits.double().softmax(1).gather(1, nxt[:, None]).mean()

    return 100 * (p_next(next_logits, next_y) - p_next(orig_logits, orig_y)).item()


def r_squared(a: Sequence[float] | Tensor, b: Sequence[float] | Tensor) -> float:
    """Squared Pearson correlation (= R² of the OLS line) of paired points (§7.5); NaN if either is constant."""
    x = torch.tensor(np.array(a, dtype=np.float64))  # a copy: pandas hands out read-only arrays
    z = torch.tensor(np.array(b, dtype=np.float64))
    if len(x) != len(z) or len(x) < 2:
        raise ValueError(f"r_squared needs two paired sequences of >= 2 points, got {len(x)} and {len(z)}")
    x, z = x - x.mean(), z - z.mean()
    denom = (x @ x) * (z @ z)
    return (x @ z).pow(2).div(denom).item() if denom > 0 else math.nan


def bg_gap(acc_mixed_same: float, acc_mixed_rand: float) -> float:
    """IN-9 BG-Gap (§7.6, Xiao et al.): accuracy on Mixed-Same minus accuracy on Mixed-Rand."""
    return acc_mixed_same - acc_mixed_rand


def worst_group_accuracy(logits: Tensor, y: Tensor, place: Tensor) -> float:
    """Waterbirds worst-group accuracy in % (§7.6): the min over the (y, place) groups present."""
    groups = 2 * y.long().cpu() + place.long().cpu()
    return group_accuracies(logits.argmax(1).cpu(), y.cpu(), groups)["worst_group_acc"]
