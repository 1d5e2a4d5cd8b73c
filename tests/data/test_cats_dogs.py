"""Cats vs Dogs loader on the shared Kaggle subset and on tiny Kaggle-layout fixtures (spec §2.7, D-17, D-18)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repro.data.cats_dogs import _test_positions, decode_resized, load_cats_dogs
from repro.data.cifar10 import seed50_split
from repro.data.image_sets import DatasetError

from conftest import SHARED_DATA

REAL = SHARED_DATA / "dogs-vs-cats"
N_CAT, N_DOG = 12, 10


def write_cats_dogs(root: Path) -> Path:
    """dogs-vs-cats/train/{cat,dog}.<n>.jpg: small RGB JPEGs of varied sizes, plus a grey one (cat.4)."""
    train = root / "train"
    train.mkdir(parents=True)
    rng = np.random.RandomState(0)
    for cls, count in (("cat", N_CAT), ("dog", N_DOG)):
        for n in range(count):
            h, w = rng.randint(20, 90, 2)
            img = Image.fromarray(rng.randint(0, 256, (h, w, 3)).astype(np.uint8))
            (img.convert("L") if (cls, n) == ("cat", 4) else img).save(train / f"{cls}.{n}.jpg")
    return root


@pytest.fixture
def cvd(tmp_path: Path) -> Path:
    return write_cats_dogs(tmp_path / "dogs-vs-cats")


def _pil_64(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB").resize((64, 64), Image.BICUBIC))


def _expected_seeded_test(names_by_class: list[list[str]]) -> list[str]:
    """The seeded draw written out: one RandomState(0), cats then dogs, 20% of each class in (class, n) order."""
    rng, chosen = np.random.RandomState(0), []
    for names in names_by_class:
        chosen += [names[i] for i in sorted(rng.choice(len(names), int(0.2 * len(names)), replace=False))]
    return chosen


def test_seeded_test_split_then_seed50_train_val(cvd):
    ds = load_cats_dogs(cvd)
    cats, dogs = [f"cat.{n}.jpg" for n in range(N_CAT)], [f"dog.{n}.jpg" for n in range(N_DOG)]
    test = ds.splits["test"]
    assert test.names == _expected_seeded_test([cats, dogs]) == ds.details["test_files"]
    assert ds.details["test_split"] == "seeded_20pct_per_class_subset" and ds.details["full_size"] is False
    assert test.labels.tolist() == [0, 0, 1, 1]
    rest = [n for n in cats + dogs if n not in test.names]  # numeric (class, n) order: cat.2 before cat.10
    train_idx, val_idx = seed50_split(len(rest))
    assert ds.splits["train"].names == [rest[i] for i in train_idx]
    assert ds.splits["val"].names == [rest[i] for i in val_idx]
    assert ds.details["counts"] == {"train": 15, "val": 3, "test": 4} and ds.transforms == "catsdogs"
    for s in ds.splits.values():
        assert s.labels.tolist() == [int(n.startswith("dog")) for n in s.names]
        assert [f.name for f in s.files] == s.names and all(f.parent == cvd / "train" for f in s.files)
        assert s.images.shape == (len(s), 64, 64, 3) and s.images.dtype == np.uint8
        assert all(np.array_equal(img, _pil_64(f)) for img, f in zip(s.images, s.files))


def test_full_size_draws_2500_per_class_from_numeric_order():
    found = [(lab, n, Path(f"{cls}.{n}.jpg")) for lab, cls in enumerate(("cat", "dog")) for n in range(12_500)]
    positions, rule = _test_positions(Path("/nonexistent"), found)
    names = [found[i][2].name for i in positions]
    assert rule == "seeded_2500_per_class" and len(names) == 5_000
    assert sum(n.startswith("cat") for n in names) == 2_500
    by_class = [[f"{cls}.{n}.jpg" for n in range(12_500)] for cls in ("cat", "dog")]
    assert names == _expected_seeded_test(by_class)


def test_user_index_files_name_the_test_images(cvd):
    (cvd / "cat_idx.txt").write_text("3.jpg\n10.jpg\n\n")
    (cvd / "dog_idx.txt").write_text("0.jpg\n")
    ds = load_cats_dogs(cvd, image_size=32)
    assert ds.splits["test"].names == ["cat.3.jpg", "cat.10.jpg", "dog.0.jpg"]
    assert ds.details["test_split"] == "index_files" and ds.splits["train"].images.shape[1:] == (32, 32, 3)
    assert ds.details["counts"] == {"train": 16, "val": 3, "test": 3}


@pytest.mark.parametrize("cat_idx, dog_idx, says", [
    ("3.jpg\n99.jpg\n", "0.jpg\n", "names 1 test images missing from train/ (first: cat.99.jpg)"),
    ("3.jpg\n", "dog.0.jpg\n", "line 1 is 'dog.0.jpg', expected `<n>.jpg`"),
    ("3.jpg\n", None, "give both cat_idx.txt and dog_idx.txt or neither"),
])
def test_bad_index_files(cvd, cat_idx, dog_idx, says):
    (cvd / "cat_idx.txt").write_text(cat_idx)
    if dog_idx is not None:
        (cvd / "dog_idx.txt").write_text(dog_idx)
    with pytest.raises(DatasetError) as e:
        load_cats_dogs(cvd)
    assert says in str(e.value) and "kaggle competitions download -c dogs-vs-cats" in str(e.value)


def test_missing_class_files(cvd):
    for f in (cvd / "train").glob("dog.*.jpg"):
        f.unlink()
    with pytest.raises(DatasetError, match=r"holds no dog\.<n>\.jpg files.*unzip train\.zip"):
        load_cats_dogs(cvd)


def test_missing_train_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"folder .*dogs-vs-cats.train is missing.*kaggle competitions"):
        load_cats_dogs(tmp_path / "dogs-vs-cats")


@pytest.mark.parametrize("content", [b"not a jpeg", None])
def test_unreadable_jpeg_names_the_file(cvd, content):
    path = cvd / "train" / "dog.7.jpg"
    path.write_bytes(content if content is not None else path.read_bytes()[:200])  # garbage / truncated
    with pytest.raises(DatasetError, match=r"dog\.7\.jpg: cannot be decoded"):
        load_cats_dogs(cvd)


def test_decode_resized_is_pil_bicubic(cvd):
    files = sorted((cvd / "train").iterdir())[:5]
    out = decode_resized(files, 48)
    assert out.shape == (5, 48, 48, 3) and out.dtype == np.uint8
    for img, f in zip(out, files):
        assert np.array_equal(img, np.asarray(Image.open(f).convert("RGB").resize((48, 48), Image.BICUBIC)))
    assert not np.array_equal(out[0], np.asarray(Image.open(files[0]).convert("RGB").resize((48, 48), Image.NEAREST)))
    assert decode_resized([], 64).shape == (0, 64, 64, 3)


@pytest.mark.skipif(not REAL.exists(), reason="../shared/data/dogs-vs-cats not present")
def test_the_shared_kaggle_subset():
    start = time.perf_counter()
    ds = load_cats_dogs(REAL)
    seconds = time.perf_counter() - start
    assert ds.details["counts"] == {"train": 640, "val": 160, "test": 200} and ds.details["per_class"] == [500, 500]
    assert ds.details["test_split"] == "seeded_20pct_per_class_subset" and ds.details["full_size"] is False
    assert ds.splits["test"].labels.tolist() == [0] * 100 + [1] * 100
    names = [n for s in ds.splits.values() for n in s.names]
    assert sorted(names) == sorted(f"{c}.{n}.jpg" for c in ("cat", "dog") for n in range(500))
    for s in ds.splits.values():
        assert all(np.array_equal(s.images[i], _pil_64(s.files[i])) for i in (0, len(s) // 2, len(s) - 1))
    print(f"shared Cats vs Dogs subset (1,000 JPEGs) loaded in {seconds:.2f} s")
