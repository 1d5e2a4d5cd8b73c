"""Biased MNIST with a coloured corner square (masktune spec §2.1), built from the MNIST IDX files.

Digits 0-4 are class 0 and 5-9 class 1. In the digit-sorted order, the first round(n0 * (1 - r)) class-0
images and the first round(n1 * r) class-1 images get a 4x4 square at the top left (r = 0.01 for train), so
the bias-conflicting images are the last fours and the first fives (D-8). Test sets: `original` (no square)
and `biased` (every 5-9 squared, no 0-4). Validation: a draw of 20% of the biased training images, seeded by
the run seed (the code's is unseeded, D-18).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.data.image_sets import ImageDataset, ImageSplit
from repro.data.mnist_files import read_mnist, test_files, train_files

SQUARE = 4
RED = (255, 0, 0)  # D-7: the code's RGB pixel values (the paper says "blue")
VAL_FRACTION = 12_000 / 60_000


def square_flags(digits: np.ndarray, conflict_ratio: float, sampling: str = "code",
                 rng: np.random.RandomState | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, labels, squared) for MNIST `digits`: `order` sorts the images by digit (stable, so MNIST's
    order within a digit), `labels` and `squared` follow `order`. `sampling="random"` (D-8 option) squares a
    random set of the same size per class instead of the first ones."""
    order = np.argsort(digits, kind="stable")
    labels = (digits[order] >= 5).astype(np.int64)
    squared = np.zeros(len(order), dtype=bool)
    for cls, fraction in ((0, 1 - conflict_ratio), (1, conflict_ratio)):
        members = np.flatnonzero(labels == cls)
        k = round(len(members) * fraction)  # Python's round, as the code
        chosen = members[:k] if sampling == "code" else np.sort(rng.choice(members, k, replace=False))
        squared[chosen] = True
    return order, labels, squared


def draw(grey: np.ndarray, squared: np.ndarray, colour: tuple[int, int, int] = RED) -> np.ndarray:
    """(N, 28, 28) grey -> (N, 28, 28, 3) RGB uint8 with the square on the `squared` images."""
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    rgb[squared, :SQUARE, :SQUARE] = np.asarray(colour, dtype=np.uint8)
    return rgb


def _split(grey: np.ndarray, digits: np.ndarray, ratio: float, sampling: str, colour: tuple[int, int, int],
           rng: np.random.RandomState) -> tuple[ImageSplit, np.ndarray]:
    order, labels, squared = square_flags(digits, ratio, sampling, rng)
    split = ImageSplit(labels, [f"{i}.png" for i in range(len(order))], draw(grey[order], squared, colour))
    return split, squared


def _test_sets(grey: np.ndarray, digits: np.ndarray, colour: tuple[int, int, int]) -> tuple[ImageSplit, ImageSplit]:
    """`test_original` and `test_biased` (every 5-9 squared), both in MNIST order so that position i is the same
    digit in both; groups 0 = clean, 1 = squared (test evaluation only, §7.9)."""
    order, _, squared = square_flags(digits, 1.0, "code")
    squared = squared[np.argsort(order)]  # back from digit order to MNIST order
    labels, names = (digits >= 5).astype(np.int64), [f"{i}.png" for i in range(len(digits))]
    clean = np.zeros(len(digits), dtype=bool)
    return (ImageSplit(labels, names, draw(grey, clean), groups=clean.astype(np.int64)),
            ImageSplit(labels, names, draw(grey, squared, colour), groups=squared.astype(np.int64)))


def load_biased_mnist(mnist_dir: Path, seed: int, conflict_ratio: float = 0.01, sampling: str = "code",
                      colour: tuple[int, int, int] = RED, train_subset: bool | None = None) -> ImageDataset:
    """Splits `train`, `val` (seeded 20% of the biased training images), `test_original`, `test_biased`.

    Uses the official training files when present, else the 5,000-image subset (stated in `details`)."""
    img_path, lab_path, subset = train_files(Path(mnist_dir), train_subset)
    grey, digits = read_mnist(img_path, lab_path)
    test_grey, test_digits = read_mnist(*test_files(Path(mnist_dir)))
    rng = np.random.RandomState(seed)
    full, squared = _split(grey, digits, conflict_ratio, sampling, colour, rng)
    val_idx = np.sort(rng.choice(len(full), int(round(VAL_FRACTION * len(full))), replace=False))
    train_idx = np.setdiff1d(np.arange(len(full)), val_idx)
    original, biased = _test_sets(test_grey, test_digits, colour)
    test_squared = biased.groups.astype(bool)
    details = {
        "train_source": str(img_path), "train_subset": subset,
        "note": (f"official train-images-idx3-ubyte.gz absent: built from the {len(full):,}-image subset "
                 f"(the paper: 60,000)") if subset else "official MNIST training files",
        "squared": {"class0": int(squared[full.labels == 0].sum()), "class1": int(squared[full.labels == 1].sum()),
                    "class0_clean": int((~squared[full.labels == 0]).sum())},
        "test_biased_squared": int(test_squared.sum()),
    }
    return ImageDataset("biased_mnist", 2, {"train": full.subset(train_idx), "val": full.subset(val_idx),
                                            "test_original": original, "test_biased": biased},
                        "mnist", details)
