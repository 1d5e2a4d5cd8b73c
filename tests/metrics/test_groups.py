"""Group metrics for CelebA / Waterbirds (spec §6.1, D-15, D-16) on a hand-made confusion."""

from __future__ import annotations

import math

import pytest
import torch

from repro.metrics.groups import group_accuracies, per_batch_accuracy, weighted_average

# group:    0 0 0 0 | 1 1 1 | 2 2 | 3   correct: 4/4, 2/3, 1/2, 0/1 -> 7/10
GROUPS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 3])
LABELS = torch.tensor([0, 1, 0, 1, 1, 0, 1, 0, 1, 1])
PRED = torch.tensor([0, 1, 0, 1, 1, 1, 1, 0, 0, 0])


def test_group_accuracies():
    m = group_accuracies(PRED, LABELS, GROUPS)
    assert m["group_n"] == [4, 3, 2, 1]
    assert m["group_acc"] == pytest.approx([100.0, 200 / 3, 50.0, 0.0])
    assert m["worst_group_acc"] == 0.0 and m["average_acc"] == pytest.approx(70.0)


def test_empty_group_is_nan_and_left_out_of_the_worst_group():
    keep = GROUPS != 0  # the empty group first: a min over a NaN-first sequence would return NaN
    m = group_accuracies(PRED[keep], LABELS[keep], GROUPS[keep])
    assert m["group_n"] == [0, 3, 2, 1] and math.isnan(m["group_acc"][0])
    assert m["worst_group_acc"] == 0.0 and m["average_acc"] == pytest.approx(50.0)


def test_weighted_average_uses_train_proportions():
    acc = group_accuracies(PRED, LABELS, GROUPS)["group_acc"]
    assert weighted_average(acc, [0.4, 0.3, 0.2, 0.1]) == pytest.approx(70.0)  # = test proportions
    assert weighted_average(acc, [1, 1, 1, 7]) == pytest.approx(10 + 20 / 3 + 5)  # counts are normalised
    assert weighted_average(acc, [1, 0, 0, 0]) == pytest.approx(100.0)


def test_per_batch_accuracy_is_the_mean_of_batch_means():
    pred, labels = torch.tensor([1, 1, 0, 0, 1]), torch.tensor([1, 1, 1, 1, 1])
    assert per_batch_accuracy(pred, labels, 2) == pytest.approx(200 / 3)  # (100 + 0 + 100) / 3, per sample 60
    assert per_batch_accuracy(pred, labels, 5) == pytest.approx(60.0)
