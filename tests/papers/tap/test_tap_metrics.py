"""The TAP code's per-batch metric variants (D-15, D-16) on hand-made predictions."""

from __future__ import annotations

import pytest
import torch

import repro.papers.tap.metrics  # noqa: F401  registers f1_code and mae_code
from repro.metrics import compute


def _logits(pred: list[int], k: int = 2) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(pred), k).float() * 5


def test_f1_code_uses_the_class1_logit_per_batch_of_32():
    # Argmax says class 1 for every row, but the class-1 logit is negative in the first batch of 32: the code's
    # sigmoid > 0.5 rule predicts 0 there (F1 0), and 1 in the partial last batch of 8 (F1 1 on all positives).
    y = torch.ones(40, dtype=torch.long)
    logits = torch.tensor([[-3.0, -1.0]] * 32 + [[-3.0, 1.0]] * 8)
    m = compute(["f1", "f1_code"], logits, y)
    assert m["f1"] == 1.0 and m["f1_code"] == pytest.approx((0.0 + 1.0) / 2)  # the partial batch counts fully
    # A batch entirely inside [0, 1] is thresholded at 0.5 without a sigmoid: 0.4 -> 0, 0.6 -> 1.
    inside = torch.tensor([[0.9, 0.4], [0.1, 0.6]])
    assert compute(["f1_code"], inside, torch.tensor([1, 1]))["f1_code"] == pytest.approx(2 * 1 / (2 * 1 + 1))


def test_mae_code_averages_per_batch_mae():
    y = torch.zeros(33, dtype=torch.long)
    logits = _logits([0] * 32 + [4], 5)  # batch 1 MAE 0, batch 2 (one row) MAE 4
    m = compute(["mae", "mae_code"], logits, y)
    assert m["mae"] == pytest.approx(4 / 33) and m["mae_code"] == pytest.approx(2.0)
