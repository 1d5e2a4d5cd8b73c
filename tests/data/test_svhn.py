"""SVHN loader on .mat files written as torchvision downloads them (spec §2.6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from repro.data.cifar10 import seed50_split
from repro.data.image_sets import DatasetError
from repro.data.svhn import load_svhn

N = {"train": 12, "test": 7}


def write_svhn(root: Path) -> Path:
    """svhn/{train,test}_32x32.mat: X (32, 32, 3, N) uint8, y (N, 1) uint8 in 1..10 (10 = digit 0)."""
    root.mkdir(parents=True)
    rng = np.random.RandomState(0)
    for split, n in N.items():
        y = rng.randint(1, 11, (n, 1)).astype(np.uint8)
        y[:2, 0] = 10, 3
        savemat(root / f"{split}_32x32.mat", {"X": rng.randint(0, 256, (32, 32, 3, n)).astype(np.uint8), "y": y})
    return root


@pytest.fixture
def svhn(tmp_path: Path) -> Path:
    return write_svhn(tmp_path / "svhn")


def test_images_labels_and_names_match_torchvision(svhn, monkeypatch):
    import torchvision.datasets.svhn as tv_svhn

    monkeypatch.setattr(tv_svhn, "check_integrity", lambda *a, **k: True)  # the fixture's md5s are not official
    ds = load_svhn(svhn)
    assert ds.transforms == "svhn" and ds.num_classes == 10 and ds.details["full_size"] is False
    assert ds.details["counts"] == {"train": 10, "val": 2, "test": 7}
    train_idx, val_idx = seed50_split(N["train"])
    assert ds.splits["val"].names == [str(i) for i in val_idx]
    assert ds.splits["train"].names == [str(i) for i in train_idx]
    for split, tv_split in (("train", "train"), ("val", "train"), ("test", "test")):
        tv = tv_svhn.SVHN(str(svhn), split=tv_split, download=False)
        s, idx = ds.splits[split], [int(n) for n in ds.splits[split].names]
        assert s.images.dtype == np.uint8 and s.images.shape == (len(s), 32, 32, 3)
        assert np.array_equal(s.images, tv.data[idx].transpose(0, 2, 3, 1))  # torchvision keeps (N, 3, 32, 32)
        assert s.labels.tolist() == tv.labels[idx].tolist()


def test_label_10_is_digit_0_and_the_pixel_layout(svhn):
    x = np.zeros((32, 32, 3, N["train"]), np.uint8)
    x[4, 9, 1, 0] = 77  # row 4, column 9, green, image 0
    y = np.full((N["train"], 1), 10, np.uint8)
    y[1] = 3
    savemat(svhn / "train_32x32.mat", {"X": x, "y": y})
    ds = load_svhn(svhn)
    labels = {n: int(lab) for s in ("train", "val") for n, lab in zip(ds.splits[s].names, ds.splits[s].labels)}
    assert labels["0"] == 0 and labels["1"] == 3 and set(labels.values()) == {0, 3}
    split = next(ds.splits[s] for s in ("train", "val") if "0" in ds.splits[s].names)
    img = split.images[split.names.index("0")]
    assert img[4, 9, 1] == 77 and img.sum() == 77


@pytest.mark.parametrize("file, mat, says", [
    ("test_32x32.mat", None, "test_32x32.mat is missing"),
    ("train_32x32.mat", {"y": np.ones((3, 1), np.uint8)}, "lacks the variable X or y (has ['y'])"),
    ("train_32x32.mat", b"definitely not a MATLAB file" * 10, "not a readable MATLAB file"),
    ("test_32x32.mat", {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.ones((2, 1), np.uint8)},
     "expected (32, 32, 3, N) uint8"),
    ("test_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((3, 1), np.uint8)}, "with 3 labels"),
])
def test_broken_copies_give_a_dataset_error_naming_the_problem(svhn, file, mat, says):
    path = svhn / file
    if mat is None:
        path.unlink()
    elif isinstance(mat, bytes):
        path.write_bytes(mat)
    else:
        savemat(path, mat)
    with pytest.raises(DatasetError) as e:
        load_svhn(svhn)
    msg = str(e.value)
    assert says in msg and file in msg and "torchvision.datasets.SVHN(root=<data root>/svhn" in msg


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"folder .*svhn is missing.*train_32x32.mat"):
        load_svhn(tmp_path / "svhn")
