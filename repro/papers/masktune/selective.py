"""Selective classification as in the MaskTune code (specs/masktune.md §6.3, D-13, D-14): score val and test
samples, pick the threshold that gives a target coverage on val, report coverage and selective error on test."""

from __future__ import annotations

import math

import torch
from torch import Tensor

SCORES = ("code", "product_max")
ARGMAXES = ("product", "code")


def selective_scores(p_init: Tensor, p_final: Tensor, score: str = "code", argmax: str = "product"
                     ) -> tuple[Tensor, Tensor]:
    """(scores, predictions) from the softmax probabilities (N, K) of best_erm and the finetuned model.

    r = p_init * p_final; score "code" = max softmax(r) (the code's second softmax), "product_max" = max r
    (the paper's P_init * P_final, D-13); prediction "product" = argmax r, "code" = argmax softmax(r), which
    ties to class 0 when exp(r) rounds to the same float for every class (D-13a)."""
    r = p_init * p_final
    if score == "code":
        s = r.softmax(1).amax(1)
    elif score == "product_max":
        s = r.amax(1)
    else:
        raise ValueError(f"unknown selective score {score!r}; known: {', '.join(SCORES)}")
    if argmax not in ARGMAXES:
        raise ValueError(f"unknown selective argmax {argmax!r}; known: {', '.join(ARGMAXES)}")
    return s, (r.softmax(1) if argmax == "code" else r).argmax(1)


def sr_scores(p: Tensor) -> tuple[Tensor, Tensor]:
    """(scores, predictions) of the SR baseline: one model's max softmax probability and its argmax."""
    return p.amax(1), p.argmax(1)


def coverage_threshold(val_scores: Tensor, coverage_pct: float) -> float:
    """gamma = the val scores sorted descending, at index min(round(c/100 * N), N-1) (Python's round, D-14)."""
    ordered = torch.as_tensor(val_scores).flatten().sort(descending=True).values
    n = len(ordered)
    return ordered[min(round(coverage_pct / 100 * n), n - 1)].item()


def selective_metrics(val_scores: Tensor, test_scores: Tensor, test_pred: Tensor, test_labels: Tensor,
                      coverages: tuple[float, ...] = (90, 95, 100)) -> list[dict[str, float]]:
    """Per target coverage c: the val threshold, the test coverage % (accept score >= gamma, 2 decimals), the
    selective error % among accepted (NaN when none is accepted) and the number accepted."""
    test_scores = torch.as_tensor(test_scores)
    correct = torch.as_tensor(test_pred) == torch.as_tensor(test_labels)
    rows = []
    for c in coverages:
        gamma = coverage_threshold(val_scores, c)
        accepted = test_scores >= gamma
        n_acc = int(accepted.sum())
        error = 100 * (1 - int((accepted & correct).sum()) / n_acc) if n_acc else math.nan
        rows.append({"target_coverage": c, "threshold": gamma, "coverage": round(100 * n_acc / len(test_scores), 2),
                     "error": error, "n_accepted": n_acc})
    return rows
