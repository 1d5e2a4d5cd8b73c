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


def test_weighted_ce_is_the_batch_mean_of_weighted_means():
    y = torch.tensor([0, 1, 1, 1, 0])
    logits = torch.tensor([[0.0, 1.0], [0.0, 2.0], [1.0, 0.0], [0.0, 0.0], [2.0, 0.0]])
    nll = -torch.log_softmax(logits, 1)[torch.arange(5), y]
    w = torch.tensor([0.7421, 0.2579])[y]
    batch1 = (w[:2] * nll[:2]).sum() / w[:2].sum()
    batch2 = (w[2:4] * nll[2:4]).sum() / w[2:4].sum()
    batch3 = nll[4]
    opts = {"ce": {"weight": [0.7421, 0.2579], "batch": 2}}
    assert compute(["ce"], logits, y, opts)["ce"] == pytest.approx(((batch1 + batch2 + batch3) / 3).item())
    whole = ((w * nll).sum() / w.sum()).item()
    assert compute(["ce"], logits, y, {"ce": {"weight": [0.7421, 0.2579]}})["ce"] == pytest.approx(whole)
    assert compute(["ce"], logits, y)["ce"] == pytest.approx(nll.mean().item())  # MNIST: unchanged
