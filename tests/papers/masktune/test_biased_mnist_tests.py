"""Biased-MNIST test sets: one digit per position in both, groups clean / squared, one shared reduced subset,
and per-group accuracies in the split metrics."""

import numpy as np
import torch

from repro.papers.masktune.data_biased_mnist import SQUARE, _test_sets
from repro.data.image_sets import ImageDataset
from repro.papers.masktune.datasets import _limited
from repro.papers.masktune.train import split_metrics


def _sets(n: int = 40):
    rng = np.random.RandomState(3)
    digits = rng.randint(0, 10, n)
    grey = rng.randint(1, 255, (n, 28, 28)).astype(np.uint8)
    return digits, grey, _test_sets(grey, digits, (255, 0, 0))


def test_test_sets_are_in_mnist_order_and_group_by_the_square():
    digits, grey, (original, biased) = _sets()
    assert np.array_equal(original.labels, digits >= 5) and np.array_equal(biased.labels, original.labels)
    assert np.array_equal(biased.groups, (digits >= 5).astype(np.int64)) and not original.groups.any()
    corner = biased.images[:, :SQUARE, :SQUARE].reshape(len(digits), -1, 3)
    assert np.array_equal((corner == (255, 0, 0)).all((1, 2)), digits >= 5)
    assert np.array_equal(original.images[..., 0], grey) and np.array_equal(biased.images[digits < 5], original.images[digits < 5])


def test_reduced_profiles_draw_one_subset_for_both_test_sets():
    _, _, (original, biased) = _sets()
    ds = _limited(ImageDataset("biased_mnist", 2, {"test_original": original, "test_biased": biased}, "mnist", {}),
                  {"test": 15})
    o, b = ds.splits["test_original"], ds.splits["test_biased"]
    assert len(o) == 15 and o.names == b.names and np.array_equal(o.images[b.groups == 0], b.images[b.groups == 0])


def test_split_metrics_report_accuracy_per_group():
    _, _, (_, biased) = _sets(8)
    logits = torch.zeros(8, 2)
    logits[:, 0] = 1.0  # predicts class 0 everywhere: right on every clean 0-4, wrong on every squared 5-9
    m = split_metrics(logits, biased, 4)
    clean = int((biased.groups == 0).sum())
    assert m["group_acc"][:2] == [100.0, 0.0] and m["group_n"][:2] == [clean, 8 - clean]
    assert m["accuracy"] == 100 * clean / 8
