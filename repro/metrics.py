"""Evaluation metrics by name, computed from a split's logits and labels (dataset level unless named `_code`)."""

from __future__ import annotations

from typing import Callable

from torch import Tensor

METRICS: dict[str, Callable[[Tensor, Tensor], float]] = {}


def register_metric(name: str) -> Callable[[Callable[[Tensor, Tensor], float]], Callable[[Tensor, Tensor], float]]:
    def deco(fn: Callable[[Tensor, Tensor], float]) -> Callable[[Tensor, Tensor], float]:
        METRICS[name] = fn
        return fn

    return deco


@register_metric("accuracy")
def accuracy(logits: Tensor, y: Tensor) -> float:
    """Argmax accuracy (the actdiff paper's "AUC", A-1)."""
    return (logits.argmax(1) == y).float().mean().item()


@register_metric("rocauc")
def rocauc(logits: Tensor, y: Tensor) -> float:
    """Binary ROC-AUC of softmax p(class 1); 0.5 when only one class is present."""
    from sklearn.metrics import roc_auc_score

    labels = y.cpu().numpy()
    if labels.min() == labels.max():
        return 0.5
    return float(roc_auc_score(labels, logits.softmax(1)[:, 1].cpu().numpy()))


def binary_f1(pred: Tensor, y: Tensor) -> float:
    """F1 of the positive class 1 from hard predictions; 0 when there is no positive at all."""
    tp = ((pred == 1) & (y == 1)).sum().item()
    fp = ((pred == 1) & (y == 0)).sum().item()
    fn = ((pred == 0) & (y == 1)).sum().item()
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


@register_metric("f1")
def f1(logits: Tensor, y: Tensor) -> float:
    """Dataset-level binary F1 of the argmax prediction, class 1 positive (TAP: pneumonia)."""
    return binary_f1(logits.argmax(1), y)


@register_metric("mae")
def mae(logits: Tensor, y: Tensor) -> float:
    """Mean absolute error of the argmax class as an ordinal grade (TAP: KNEE KL grade)."""
    return (logits.argmax(1) - y).abs().float().mean().item()


@register_metric("ce")
def cross_entropy(logits: Tensor, y: Tensor) -> float:
    """Mean cross-entropy over the split (TAP selects lambda by it on the permuted val split)."""
    import torch.nn.functional as F

    return F.cross_entropy(logits, y).item()


def compute(names: tuple[str, ...] | list[str], logits: Tensor, y: Tensor) -> dict[str, float]:
    """Every named metric on one split."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise KeyError(f"unknown metric {', '.join(unknown)}; known: {', '.join(sorted(METRICS))}")
    logits = logits.float()
    return {n: METRICS[n](logits, y) for n in names}
