"""Evaluation metrics by name, computed from a split's logits and labels (dataset level unless named `_code`)."""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor

Metric = Callable[..., float]  # (logits, y, **options) -> value
METRICS: dict[str, Metric] = {}


def register_metric(name: str) -> Callable[[Metric], Metric]:
    def deco(fn: Metric) -> Metric:
        METRICS[name] = fn
        return fn

    return deco


@register_metric("accuracy")
def accuracy(logits: Tensor, y: Tensor) -> float:
    """Argmax accuracy."""
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
    """Dataset-level binary F1 of the argmax prediction, class 1 positive."""
    return binary_f1(logits.argmax(1), y)


def batch_mean(fn: Callable[[Tensor, Tensor], float], logits: Tensor, y: Tensor, batch: int) -> float:
    """`fn` on consecutive batches of `batch` rows, averaged unweighted (the last partial batch counts fully)."""
    values = [fn(logits[i:i + batch], y[i:i + batch]) for i in range(0, len(y), batch)]
    return sum(values) / len(values)


@register_metric("mae")
def mae(logits: Tensor, y: Tensor) -> float:
    """Mean absolute error of the argmax class as an ordinal grade."""
    return (logits.argmax(1) - y).abs().float().mean().item()


@register_metric("ce")
def cross_entropy(logits: Tensor, y: Tensor, weight: list[float] | None = None, batch: int | None = None) -> float:
    """Cross-entropy over the split. `weight`: class weights, PyTorch's weighted mean; `batch`: the mean over
    batches of that size of the per-batch mean (a training loop's val loss); without it, the mean over the split."""
    import torch
    import torch.nn.functional as F

    w = None if weight is None else torch.tensor(weight, dtype=logits.dtype, device=logits.device)

    def ce(lg: Tensor, t: Tensor) -> float:
        return F.cross_entropy(lg, t, weight=w).item()

    return batch_mean(ce, logits, y, batch) if batch else ce(logits, y)


def compute(names: tuple[str, ...] | list[str], logits: Tensor, y: Tensor,
            options: dict[str, dict[str, Any]] | None = None) -> dict[str, float]:
    """Every named metric on one split; `options` holds keyword arguments per metric name."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise KeyError(f"unknown metric {', '.join(unknown)}; known: {', '.join(sorted(METRICS))}")
    logits = logits.float()
    options = options or {}
    return {n: METRICS[n](logits, y, **options.get(n, {})) for n in names}
