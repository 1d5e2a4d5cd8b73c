"""Metrics on hand-made predictions."""

from __future__ import annotations

import math

import pytest
import torch

from repro.metrics import compute


def _logits(pred: list[int], k: int = 2) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(pred), k).float() * 5


def test_accuracy_f1_mae_on_a_hand_made_confusion():
    y = torch.tensor([1, 1, 1, 0, 0, 1])
    m = compute(["accuracy", "f1"], _logits([1, 1, 0, 1, 0, 1]), y)
    # tp 3, fp 1, fn 1 -> F1 = 6 / 8
    assert m["accuracy"] == pytest.approx(4 / 6) and m["f1"] == pytest.approx(0.75)
    grades = torch.tensor([0, 2, 4, 1])
    assert compute(["mae"], _logits([1, 2, 2, 1], 5), grades)["mae"] == pytest.approx((1 + 0 + 2 + 0) / 4)


def test_rocauc_and_ce():
    y = torch.tensor([0, 0, 1, 1])
    logits = torch.tensor([[0.0, -1.0], [0.0, 0.5], [0.0, 0.2], [0.0, 2.0]])
    m = compute(["rocauc", "ce"], logits, y)
    assert m["rocauc"] == pytest.approx(0.75)
    expected = -sum(torch.log_softmax(logits, 1)[i, y[i]].item() for i in range(4)) / 4
    assert m["ce"] == pytest.approx(expected) and not math.isnan(m["ce"])
    assert compute(["rocauc"], logits, torch.zeros(4, dtype=torch.long))["rocauc"] == 0.5


def test_unknown_metric():
    with pytest.raises(KeyError, match="accuracy"):
        compute(["auprc"], _logits([0]), torch.tensor([0]))
