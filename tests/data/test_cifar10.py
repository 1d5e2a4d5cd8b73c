"""CIFAR-10 loader on pickles written in the official format, and the shared seed-50 split (spec §2.5, D-18)."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from repro.data.cifar10 import load_cifar10, seed50_split
from repro.data.image_sets import DatasetError

PER_BATCH, N_TEST = 6, 8
CLASSES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


class _Py2Pickler(pickle._Pickler):
    """Protocol 2 with bytes written as Python 2 `str` (SHORT_BINSTRING / BINSTRING), as in the official pickles:
    they load as bytes with encoding="bytes" (b"data") and as str with torchvision's encoding="latin1"."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        head = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)
        self.write(head + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _dump(path: Path, obj: dict) -> None:
    with path.open("wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def write_cifar(root: Path, seed: int = 0) -> Path:
    """cifar-10-batches-py/ with 5 train batches of PER_BATCH images, a test batch and batches.meta, with the
    keys and types of the official Python pickles (loaded with encoding="bytes")."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.RandomState(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        n = N_TEST if name == "test_batch" else PER_BATCH
        label = b"testing batch 1 of 1" if name == "test_batch" else f"training batch {k + 1} of 5".encode()
        _dump(folder / name, {b"batch_label": label, b"labels": rng.randint(0, 10, n).tolist(),
                              b"data": rng.randint(0, 256, (n, 3072)).astype(np.uint8),
                              b"filenames": [f"img_{k}_{i}.png".encode() for i in range(n)]})
    _dump(folder / "batches.meta", {b"num_cases_per_batch": PER_BATCH, b"label_names": CLASSES, b"num_vis": 3072})
    return folder


@pytest.fixture
def cifar(tmp_path: Path) -> Path:
    return write_cifar(tmp_path)


@pytest.mark.parametrize("n", [1, 10, 37, 50_000, 73_257])
def test_seed50_split_is_the_global_seed_shuffle_and_leaves_the_global_state(n):
    saved = np.random.get_state()
    np.random.seed(50)
    expected = list(range(n))
    np.random.shuffle(expected)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    train, val = seed50_split(n)
    after = np.random.get_state()[1]
    np.random.set_state(saved)
    assert np.array_equal(before, after)
    assert val.tolist() == expected[:int(0.2 * n)] and train.tolist() == expected[int(0.2 * n):]


@pytest.mark.parametrize("n, n_val", [(50_000, 10_000), (73_257, 14_651), (20_000, 4_000)])
def test_seed50_split_sizes(n, n_val):
    train, val = seed50_split(n)
    assert len(val) == n_val and len(train) == n - n_val
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(n))


def test_images_labels_and_names_match_torchvision(cifar, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)  # the fixture's md5s are not official
    ds = load_cifar10(cifar)
    assert ds.transforms == "cifar" and ds.num_classes == 10 and ds.tests == ["test"]
    assert ds.details["full_size"] is False and ds.details["classes"][0] == "airplane"
    assert ds.details["source_counts"] == {"train": 5 * PER_BATCH, "test": N_TEST}
    assert ds.details["counts"] == {"train": 24, "val": 6, "test": N_TEST}
    train_idx, val_idx = seed50_split(5 * PER_BATCH)
    assert ds.splits["train"].names == [str(i) for i in train_idx]
    assert ds.splits["val"].names == [str(i) for i in val_idx]
    for split, tv_train in (("train", True), ("val", True), ("test", False)):
        tv = tv_cifar.CIFAR10(str(cifar.parent), train=tv_train, download=False)
        s, idx = ds.splits[split], [int(n) for n in ds.splits[split].names]
        assert s.images.dtype == np.uint8 and s.images.shape == (len(s), 32, 32, 3)
        assert np.array_equal(s.images, tv.data[idx])
        assert s.labels.dtype == np.int64 and s.labels.tolist() == [tv.targets[i] for i in idx]


def test_pixel_layout_is_rgb_planes_row_major(cifar):
    data = np.zeros((PER_BATCH, 3072), np.uint8)
    data[0, 0 * 1024 + 2 * 32 + 5] = 11   # R at row 2, column 5
    data[0, 1 * 1024 + 7 * 32 + 1] = 22   # G at row 7, column 1
    data[0, 2 * 1024 + 31 * 32 + 30] = 33  # B at row 31, column 30
    _dump(cifar / "data_batch_1", {b"batch_label": b"x", b"labels": [0] * PER_BATCH, b"data": data,
                                   b"filenames": [b"a.png"] * PER_BATCH})
    ds = load_cifar10(cifar)
    split = next(s for s in ds.splits.values() if "0" in s.names and s is not ds.splits["test"])
    img = split.images[split.names.index("0")]
    assert (img[2, 5, 0], img[7, 1, 1], img[31, 30, 2]) == (11, 22, 33) and img.sum() == 66


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a pickle at all")


def _no_data(path: Path) -> None:
    _dump(path, {b"labels": [0], b"batch_label": b"x"})


def _bad_shape(path: Path) -> None:
    _dump(path, {b"labels": [0, 1], b"data": np.zeros((2, 1024), np.uint8), b"batch_label": b"x", b"filenames": []})


@pytest.mark.parametrize("file, breaks, says", [
    ("data_batch_3", Path.unlink, "data_batch_3 is missing"),
    ("batches.meta", Path.unlink, "batches.meta is missing"),
    ("test_batch", _truncate, "truncated or corrupt"),
    ("data_batch_2", _garbage, "truncated or corrupt"),
    ("data_batch_5", _no_data, "lacks the key b'data'"),
    ("test_batch", _bad_shape, "expected (N, 3072) uint8"),
])
def test_broken_copies_give_a_dataset_error_naming_the_problem(cifar, file, breaks, says):
    breaks(cifar / file)
    with pytest.raises(DatasetError) as e:
        load_cifar10(cifar)
    msg = str(e.value)
    assert says in msg and file in msg and "torchvision.datasets.CIFAR10(root=" in msg and "Expected layout" in msg


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"folder .*cifar-10-batches-py is missing.*download=True"):
        load_cifar10(tmp_path / "cifar-10-batches-py")
