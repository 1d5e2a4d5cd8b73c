"""cfaug metrics (spec §7, §10.12): macro AUC, accuracy, next-class shift, R², extras."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from repro.papers.cfaug.metrics import accuracy, bg_gap, macro_auc, next_class_shift, r_squared, worst_group_accuracy
from repro.metrics import METRICS, compute


@pytest.fixture
def toy() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 0, 1, 3, 3, 3, 1, 0, 3, 1])  # class 2 of 4 is absent
    return torch.randn(10, 4, generator=g) + 2 * torch.nn.functional.one_hot(y, 4), y


@pytest.mark.parametrize("scores", ["logits", "softmax"])
def test_macro_auc_is_sklearns_over_present_classes(toy, scores):
    logits, y = toy
    s = logits.softmax(1) if scores == "softmax" else logits
    want = np.mean([roc_auc_score((y == c).numpy(), s[:, c].numpy()) for c in (0, 1, 3)])
    assert macro_auc(logits, y, scores=scores) == pytest.approx(100 * want)


def test_macro_auc_logits_and_softmax_differ(toy):
    logits, y = toy
    assert macro_auc(logits, y) != pytest.approx(macro_auc(logits, y, scores="softmax"))


def test_macro_auc_perfect_single_class_and_bad_option():
    y = torch.tensor([0, 1, 2, 2])
    assert macro_auc(torch.nn.functional.one_hot(y, 5).float(), y) == 100.0
    assert math.isnan(macro_auc(torch.randn(3, 4), torch.tensor([2, 2, 2])))
    with pytest.raises(ValueError):
        macro_auc(torch.randn(4, 3), y, scores="probs")


def test_registered_metrics_and_accuracy_in_percent(toy):
    logits, y = toy
    assert {"acc_pct", "macro_auc"} <= METRICS.keys()
    out = compute(["acc_pct", "macro_auc"], logits, y, {"macro_auc": {"scores": "softmax"}})
    assert out["macro_auc"] == macro_auc(logits, y, scores="softmax")
    assert accuracy(torch.eye(4), torch.tensor([0, 1, 3, 3])) == 75.0


def test_next_class_shift():
    g = torch.Generator().manual_seed(1)
    logits, y = torch.randn(12, 9, generator=g), torch.randint(0, 9, (12,), generator=g)
    assert next_class_shift(logits, y, logits, y) == 0.0  # a model ignoring the background
    nxt = torch.nn.functional.one_hot((y + 1) % 9, 9) * 50.0  # Mixed-Next: all mass on the next class
    assert next_class_shift(nxt, y, torch.zeros(12, 9), y) == pytest.approx(100 * (1 - 1 / 9))
    assert next_class_shift(torch.zeros(12, 9), y, nxt, y) == pytest.approx(-100 * (1 - 1 / 9))
    wrap = torch.tensor([8])  # class 8's next class is 0
    assert next_class_shift(torch.tensor([[50.0] + [0.0] * 8]), wrap, torch.zeros(1, 9), wrap) > 88


def test_r_squared():
    a = torch.arange(6.0)
    assert r_squared(a, 3 * a - 2) == pytest.approx(1.0)
    assert r_squared(a, -a) == pytest.approx(1.0)
    b = [1.0, 3.0, 2.0, 5.0, 4.0, 0.0]
    assert r_squared(a, b) == pytest.approx(np.corrcoef(a.numpy(), b)[0, 1] ** 2)
    assert math.isnan(r_squared(a, torch.ones(6)))
    with pytest.raises(ValueError):
        r_squared([1.0, 2.0], [1.0])


def test_extras():
    assert bg_gap(71.0, 51.5) == 19.5
    y = torch.tensor([0, 0, 1, 1, 0, 1])
    place = torch.tensor([0, 0, 1, 1, 1, 0])
    pred = torch.tensor([0, 1, 1, 1, 0, 0])  # groups (y,place): (0,0) 1/2, (1,1) 2/2, (0,1) 1/1, (1,0) 0/1
    assert worst_group_accuracy(torch.nn.functional.one_hot(pred, 2).float(), y, place) == 0.0
    assert worst_group_accuracy(torch.nn.functional.one_hot(pred[:4], 2).float(), y[:4], place[:4]) == 50.0
