"""Decoy MNIST (spec §2.1): each MNIST image with a 4x4 corner patch whose value encodes the label (train and
test_cor) or a random digit (val and test), written as `original_mnist.npz` and `decoyed_mnist.npz` with its
`meta.json` (`repro.papers.tap.data_staging`). Every draw is seeded (D-21), so preparing twice gives the same
arrays."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np

from repro.data.mnist_files import SUBSET, read_mnist, test_files, train_files
from repro.papers.tap.data_staging import MODES, VAL_FRACTION, box_masks, kept_rows, staged, write_meta
from repro.runs.prepared import file_sha256, write_npz

log = logging.getLogger(__name__)

PATCH = 4
STEP = 255 // 10  # MNIST patch value 255 - 25 * label (§2.1)
OFFSETS = np.array([0, 28 - PATCH])


def decoy(images: np.ndarray, labels: np.ndarray, rng: random.Random,
          permuted: bool) -> tuple[np.ndarray, np.ndarray]:
    """Add a 4x4 corner patch per image: value 255 - 25*label (correlated) or 255 - 25*r, r ~ U{0..9}
    (permuted); per image the row coin, then the column coin, then the value draw (§2.1).
    Returns the images and the uint8 patch-position masks."""
    draws = np.array([(rng.randint(0, 1), rng.randint(0, 1), rng.randint(0, 9) if permuted else int(y))
                      for y in labels], dtype=np.int64).reshape(-1, 3)
    pos = box_masks(OFFSETS[draws[:, 0]], OFFSETS[draws[:, 1]], (PATCH, PATCH), images.shape[1:])
    values = (255 - STEP * draws[:, 2]).astype(np.uint8)[:, None, None]
    return np.where(pos == 1, values, images), pos


def prepare_decoy_mnist(mnist_dir: Path, out_dir: Path, seed: int = 0, train_subset: bool | None = None,
                        limit: int | None = None) -> Path:
    """Write `original_mnist.npz`, `decoyed_mnist.npz` and `meta.json` into `out_dir`; returns `out_dir`.

    Uses the official training files when present, else the 5k subset (`train_subset` forces either). val =
    a seeded draw of 10% of the training images (D-21; 6,000 of 60,000 in the paper, 500 of the 5k subset),
    in draw order; train = the rest in ascending order; train and test_cor correlated, val and test permuted,
    from one `random.Random(seed)` stream. `limit` keeps a seeded subset of each split (tests, demos)."""
    mnist_dir, out_dir = Path(mnist_dir), Path(out_dir)
    img_path, lab_path, subset = train_files(mnist_dir, train_subset)
    test = test_files(mnist_dir)
    images, labels = read_mnist(img_path, lab_path)
    test_images, test_labels = read_mnist(*test)
    n = len(images)
    val_idx = np.random.RandomState(seed).choice(n, int(VAL_FRACTION * n), replace=False)
    train_idx = np.setdiff1d(np.arange(n), val_idx)
    idx = {"train": train_idx, "val": val_idx, "test": np.arange(len(test_labels))}
    sizes = {s: len(i) for s, i in idx.items()}
    idx = {s: i[kept_rows(len(i), limit, seed)] for s, i in idx.items()}
    arrays = {"train": (images, labels), "val": (images, labels), "test": (test_images, test_labels)}
    clean = {s: (arrays[s][0][i], arrays[s][1][i]) for s, i in idx.items()}
    rng = random.Random(seed)
    decoyed: dict[str, np.ndarray] = {}
    for mode, (source, permuted) in MODES.items():
        x, y = clean[source]
        decoyed[f"{mode}_images"], decoyed[f"decoy_positions_{mode}"] = decoy(x, y, rng, permuted)
        decoyed[f"{mode}_labels"] = y
    note = (f"official train-images-idx3-ubyte.gz absent: the {n:,}-image subset {SUBSET[0]} is used, with the "
            f"same seeded 10% val rule ({sizes['val']:,} of {n:,}; the paper: 6,000 of 60,000)"
            if subset else "official MNIST training files")
    log.info("decoy MNIST: %s", note)
    sources = dict(zip(("train_images", "train_labels", "test_images", "test_labels"),
                       (img_path, lab_path, *test)))
    meta = {"dataset": "decoy_mnist", "seed": seed, "limit": limit, "subset": subset, "note": note,
            "sources": {k: {"file": str(p), "sha256": file_sha256(p)} for k, p in sources.items()},
            "split_sizes": sizes, "counts": {m: len(decoyed[f"{m}_labels"]) for m in MODES},
            "rng": "val: numpy RandomState(seed).choice; patches: random.Random(seed), train, val, test, "
                   "test_cor; per image row coin, column coin, value (permuted)"}
    with staged(out_dir) as stage:
        write_npz(stage / "original_mnist.npz", {f"{s}_{k}": a for s, (x, y) in clean.items()
                                                  for k, a in (("images", x), ("labels", y))})
        write_npz(stage / "decoyed_mnist.npz", decoyed)
        write_meta(stage, meta)
    return out_dir
