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
