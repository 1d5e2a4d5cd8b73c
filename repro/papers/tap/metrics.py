"""The TAP code's variants of F1 and MAE (spec §7, D-15, D-16): computed per evaluation batch of 32, as its
evaluate.py does, and averaged over batches; registered beside the dataset-level ones (`repro.metrics`)."""

from __future__ import annotations

from torch import Tensor

from repro.metrics import batch_mean, binary_f1, mae, register_metric

CODE_BATCH = 32  # the evaluation batch of the TAP code's evaluate.py (spec §7, D-15)


def code_f1_batch(logits: Tensor, y: Tensor) -> float:
    """torchmetrics' binary F1 on the class-1 logit alone: a sigmoid unless every value is in [0, 1], then > 0.5."""
    score = logits[:, 1]
    if ((score < 0) | (score > 1)).any():
        score = score.sigmoid()
    return binary_f1((score > 0.5).long(), y)


@register_metric("f1_code")
def f1_code(logits: Tensor, y: Tensor) -> float:
    """The TAP code's F1 (D-15, D-16): `code_f1_batch` per batch of 32, averaged over batches."""
    return batch_mean(code_f1_batch, logits, y, CODE_BATCH)


@register_metric("mae_code")
def mae_code(logits: Tensor, y: Tensor) -> float:
    """The TAP code's MAE (D-15): per batch of 32, averaged over batches."""
    return batch_mean(mae, logits, y, CODE_BATCH)
