"""Decoy MNIST preparation on the real shared MNIST files (TAP spec §2.1)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.papers.tap.data_decoy_mnist import build_decoy_mnist
from repro.data.idx import read_idx
from repro.data.image_sets import DatasetError
from repro.papers.tap.data_prepare_decoy import prepare_decoy_mnist

MNIST = Path(__file__).resolve().parents[4] / "shared" / "data" / "MNIST"
pytestmark = pytest.mark.skipif(not MNIST.exists(), reason="../shared/data/MNIST not present")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare_decoy_mnist(MNIST, tmp_path_factory.mktemp("dm"))


def _patch_values(npz, split):
    x, pos = npz[f"{split}_images"], npz[f"decoy_positions_{split}"]
    assert (pos.reshape(len(pos), -1).sum(1) == 16).all()  # one 4x4 patch per image
    corners = {(r, c) for r in (0, 24) for c in (0, 24)}
    assert all((int(np.argwhere(p)[0][0]), int(np.argwhere(p)[0][1])) in corners for p in pos[:200])
    return np.array([x[i][pos[i] == 1].min() for i in range(len(x))]), npz[f"{split}_labels"]


def test_patch_encodes_label_in_train_and_test_cor_only(prepared):
    npz = np.load(prepared / "decoyed_mnist.npz")
    for split in ("train", "test_cor"):
        values, labels = _patch_values(npz, split)
        assert (values == 255 - 25 * labels).all()
    for split in ("val", "test"):
        values, labels = _patch_values(npz, split)
        assert 0.07 < (values == 255 - 25 * labels).mean() < 0.13  # random value: ~10% match by chance


def test_counts_split_and_determinism(prepared, tmp_path):
    npz = np.load(prepared / "decoyed_mnist.npz")
    assert len(npz["train_images"]) == 4500 and len(npz["val_images"]) == 500 and len(npz["test_images"]) == 10000
    clean = np.load(prepared / "original_mnist.npz")
    assert (clean["test_images"] == read_idx(MNIST / "raw" / "t10k-images-idx3-ubyte.gz")).all()
    again = prepare_decoy_mnist(MNIST, tmp_path / "again")
    for name in ("original_mnist.npz", "decoyed_mnist.npz"):
        assert (again / name).read_bytes() == (prepared / name).read_bytes()


def test_tensors_for_training(prepared):
    d = build_decoy_mnist(0, torch.device("cpu"), prepared, train_limit=64, eval_limit=32)
    assert d.x.dtype == torch.uint8 and d.x.shape == (64, 1, 28, 28) and d.mask.sum() == 64 * 16
    assert set(d.evals) == {"valid", "test", "test_cor"} and len(d.evals["test"][0]) == 32
    x = d.batch(d.x[:8])
    assert x.dtype == torch.float32 and x.min() == pytest.approx((0 - 0.1307) / 0.3081)
    base = build_decoy_mnist(0, torch.device("cpu"), prepared, variant="clean")
    assert base.mask.sum() == 0


def test_bad_layouts(tmp_path):
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz"):
        prepare_decoy_mnist(tmp_path, tmp_path / "out")
    (tmp_path / "subset").mkdir()
    (tmp_path / "subset" / "train-5k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 8))
    (tmp_path / "subset" / "train-5k-labels-idx1-ubyte.gz").write_bytes(b"")
    with pytest.raises(DatasetError, match="test files missing"):
        prepare_decoy_mnist(tmp_path, tmp_path / "out")


def test_read_idx_rejects_truncated(tmp_path):
    bad = tmp_path / "x.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05abc"))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(bad)
    assert list(read_idx(MNIST / "raw" / "t10k-labels-idx1-ubyte.gz")[:3]) == [7, 2, 1]
