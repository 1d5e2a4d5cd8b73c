"""Derived data of the TAP paper (spec §2): decoy MNIST, written once, never touching the user's files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from repro.data.idx import read_idx

PATCH = 4
STEP = 255 // 10  # patch value 255 - 25 * label (§2.1)
OFFSETS = (0, 28 - PATCH)
FULL = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
SUBSET = ("subset/train-5k-images-idx3-ubyte.gz", "subset/train-5k-labels-idx1-ubyte.gz")
TEST = ("raw/t10k-images-idx3-ubyte.gz", "raw/t10k-labels-idx1-ubyte.gz")


class LayoutError(ValueError):
    """The user's raw data is missing files or has the wrong layout."""


def _find(mnist_dir: Path, name: str) -> Path | None:
    """An MNIST file in `<dir>/<name>` or `<dir>/raw/<basename>` (torchvision's layout)."""
    for cand in (mnist_dir / name, mnist_dir / "raw" / Path(name).name):
        if cand.exists():
            return cand
    return None


def _train_files(mnist_dir: Path) -> tuple[Path, Path, bool]:
    """The official training files when present, else the 5,000-image subset; third item: subset used."""
    full = [_find(mnist_dir, n) for n in FULL]
    if all(full):
        return full[0], full[1], False
    subset = [mnist_dir / n for n in SUBSET]
    if all(p.exists() for p in subset):
        return subset[0], subset[1], True
    raise LayoutError(
        f"no MNIST training images under {mnist_dir}: expected {FULL[0]} and {FULL[1]} (in {mnist_dir} or "
        f"{mnist_dir}/raw), or the 5k subset {SUBSET[0]}; torchvision.datasets.MNIST(root, download=True) "
        "writes the official files to <root>/MNIST/raw/.")


def decoy(images: np.ndarray, labels: np.ndarray, rng: random.Random, permuted: bool) -> tuple[np.ndarray, np.ndarray]:
    """Add a 4x4 corner patch per image: value 255 - 25*label (correlated) or 255 - 25*r, r ~ U{0..9}
    (permuted); per image the row coin, then the column coin, then the value draw (§2.1).
    Returns the images and the uint8 patch-position masks."""
    out, pos = images.copy(), np.zeros_like(images, dtype=np.uint8)
    for i, label in enumerate(labels):
        r, c = OFFSETS[rng.randint(0, 1)], OFFSETS[rng.randint(0, 1)]
        value = 255 - STEP * (rng.randint(0, 9) if permuted else int(label))
        out[i, r:r + PATCH, c:c + PATCH] = value
        pos[i, r:r + PATCH, c:c + PATCH] = 1
    return out, pos


def prepare_decoy_mnist(mnist_dir: Path, out_dir: Path, seed: int = 0) -> Path:
    """Write `original_mnist.npz`, `decoyed_mnist.npz` and `meta.json` into `out_dir`.

    val = a seeded 10% of the training images (D-21; 6,000 of 60,000 in the paper), train = the rest in
    ascending order; train and test_cor correlated, val and test permuted. Deterministic: preparing twice
    gives identical bytes."""
    mnist_dir = Path(mnist_dir)
    img_path, lab_path, subset = _train_files(mnist_dir)
    test = [_find(mnist_dir, n) for n in TEST]
    if not all(test):
        raise LayoutError(f"MNIST test files missing under {mnist_dir}: expected {TEST[0]} and {TEST[1]}")
    images, labels = read_idx(img_path), read_idx(lab_path)
    test_images, test_labels = read_idx(test[0]), read_idx(test[1])
    if len(images) != len(labels) or len(test_images) != len(test_labels):
        raise LayoutError(f"MNIST image and label counts differ under {mnist_dir}")
    val_idx = np.sort(np.random.RandomState(seed).choice(len(images), len(images) // 10, replace=False))
    train_idx = np.setdiff1d(np.arange(len(images)), val_idx)
    clean = {"train": (images[train_idx], labels[train_idx]), "val": (images[val_idx], labels[val_idx]),
             "test": (test_images, test_labels)}
    rng = random.Random(seed)
    decoyed: dict[str, np.ndarray] = {}
    for split, source, permuted in (("train", "train", False), ("val", "val", True), ("test", "test", True),
                                    ("test_cor", "test", False)):
        x, y = clean[source]
        decoyed[f"{split}_images"], decoyed[f"decoy_positions_{split}"] = decoy(x, y, rng, permuted)
        decoyed[f"{split}_labels"] = y
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / "original_mnist.npz", **{f"{s}_{k}": a for s, (x, y) in clean.items()
                                                for k, a in (("images", x), ("labels", y))})
    np.savez(out_dir / "decoyed_mnist.npz", **decoyed)
    meta = {"source_train": str(img_path), "subset": subset, "seed": seed,
            "counts": {s: int(len(v[1])) for s, v in clean.items()},
            "note": "5,000-image MNIST train subset (official train images absent)" if subset else "official MNIST"}
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir
