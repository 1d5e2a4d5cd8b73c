"""Selective classification as in the MaskTune code (spec §6.3, D-13, D-14)."""

from __future__ import annotations

import math

import pytest
import torch

from repro.papers.masktune.selective import coverage_threshold, selective_metrics, selective_scores, sr_scores

VAL = torch.tensor([0.5, 0.9, 0.1, 0.7, 0.3, 1.0, 0.2, 0.8, 0.4, 0.6])  # N = 10, distinct


@pytest.mark.parametrize("c, gamma", [
    (100, 0.1),  # round(10) = 10 -> min(10, 9) = 9: the minimum val score
    (95, 0.1),   # round(9.5) = 10 (half to even) -> 9
    (85, 0.2),   # round(8.5) = 8 (half to even; half up would give 9 -> 0.1)
    (90, 0.1),   # round(9.0) = 9
    (80, 0.2),   # round(8.0) = 8 -> sorted desc [1.0, 0.9, ..., 0.2, 0.1][8]
    (25, 0.8),   # round(2.5) = 2
])
def test_coverage_threshold_index(c, gamma):
    assert coverage_threshold(VAL, c) == pytest.approx(gamma)


def test_coverage_100_accepts_scores_at_or_above_the_min_val_score_only():
    test_scores = torch.tensor([0.1, 0.05, 0.95, 0.5])  # one below the min val score 0.1
    pred, labels = torch.tensor([1, 0, 1, 0]), torch.tensor([1, 0, 0, 0])
    row = {r["target_coverage"]: r for r in selective_metrics(VAL, test_scores, pred, labels)}[100]
    assert row["threshold"] == pytest.approx(0.1) and row["n_accepted"] == 3 and row["coverage"] == 75.0
    assert row["error"] == pytest.approx(100 / 3)  # accepted {0, 2, 3}: sample 2 is wrong


def test_metrics_per_coverage_and_rounding():
    test_scores = torch.linspace(0, 1, 7)  # 0, 1/6, ..., 1
    pred, labels = torch.tensor([0, 0, 0, 0, 1, 1, 1]), torch.tensor([1, 0, 0, 1, 1, 1, 0])
    rows = selective_metrics(VAL, test_scores, pred, labels, coverages=(30, 85, 100))
    assert [r["target_coverage"] for r in rows] == [30, 85, 100]
    # gamma: 30 -> idx 3 -> 0.7; 85 -> idx 8 -> 0.2; 100 -> 0.1
    assert [r["n_accepted"] for r in rows] == [2, 5, 6]
    assert [r["coverage"] for r in rows] == [28.57, 71.43, 85.71]
    assert rows[0]["error"] == pytest.approx(50.0) and rows[1]["error"] == pytest.approx(40.0)
    assert rows[2]["error"] == pytest.approx(100 / 3)


def test_nothing_accepted_is_nan():
    rows = selective_metrics(VAL, torch.tensor([0.01, 0.02]), torch.tensor([0, 1]), torch.tensor([0, 1]),
                             coverages=(100,))
    assert rows[0]["n_accepted"] == 0 and rows[0]["coverage"] == 0.0 and math.isnan(rows[0]["error"])


def _order(scores: torch.Tensor) -> list[int]:
    return scores.argsort(descending=True).tolist()


@pytest.mark.parametrize("p_init, p_final", [
    # K = 3: r = [.36, .16, 0] vs [.33, .045, .045]; product ranks A first, softmax(r) ranks B first
    ([[0.6, 0.4, 0.0], [0.6, 0.2, 0.2]], [[0.6, 0.4, 0.0], [0.55, 0.225, 0.225]]),
    # K = 2 too (the spec says "for K > 2"): r = [.49, .09] vs [.45, 0]; softmax follows r_max - r_min
    ([[0.7, 0.3], [1.0, 0.0]], [[0.7, 0.3], [0.45, 0.55]]),
])
def test_the_second_softmax_changes_the_ranking_not_the_argmax(p_init, p_final):
    p, q = torch.tensor(p_init), torch.tensor(p_final)
    code, pred_code = selective_scores(p, q, "code")
    prod, pred_prod = selective_scores(p, q, "product_max")
    assert torch.allclose(prod, (p * q).amax(1)) and torch.allclose(code, (p * q).softmax(1).amax(1))
    assert torch.equal(pred_code, pred_prod) and torch.equal(pred_code, (p * q).argmax(1))
    assert _order(prod) == [0, 1] and _order(code) == [1, 0]


def test_sr_scores_and_unknown_score():
    p = torch.tensor([[0.2, 0.8], [0.9, 0.1]])
    scores, pred = sr_scores(p)
    assert scores.tolist() == pytest.approx([0.8, 0.9]) and pred.tolist() == [1, 0]
    with pytest.raises(ValueError, match="unknown selective score"):
        selective_scores(p, p, "sum")


def test_argmax_of_the_second_softmax_ties_to_class_0_when_the_products_underflow():
    # fp32: p_init = [1e-8, 1], p_final = [1, 2e-8]; r = [1e-8, 2e-8], exp(r) == 1 for both, softmax = [.5, .5]
    p, q = torch.tensor([[1e-8, 1.0]]), torch.tensor([[1.0, 2e-8]])
    _, product = selective_scores(p, q, "code", "product")
    _, code = selective_scores(p, q, "code", "code")
    assert product.tolist() == [1] and code.tolist() == [0]
    with pytest.raises(ValueError, match="unknown selective argmax"):
        selective_scores(p, q, "code", "max")
