"""CIFAR-10 from torchvision's `cifar-10-batches-py` pickles (specs/masktune.md §2.5), plus the helpers the
MaskTune in-memory loaders share: the seed-50 80/20 validation split (§2.5, D-18) and the error message."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from repro.data.image_sets import DatasetError, ImageDataset, ImageSplit
from repro.data.probes import bad_file, Finding, absent_names, state_of

VAL_SEED = 50  # the code's np.random.seed(50) before shuffling the train indices (§2.5)
VAL_FRACTION = 0.2
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
FULL_SIZE = {"train": 50_000, "test": 10_000}
LAYOUT = ("cifar-10-batches-py/ holding the python pickles data_batch_1 ... data_batch_5, test_batch and "
          "batches.meta")
OBTAIN = ("torchvision.datasets.CIFAR10(root=<data root>, download=True) writes <data root>/cifar-10-batches-py "
          "(or unpack cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html)")


def data_error(dataset: str, problem: str, layout: str, obtain: str) -> DatasetError:
    """One paragraph: what is wrong, the expected layout, how to get the data."""
    return DatasetError(f"{dataset}: {problem}. Expected layout: {layout}. To obtain it: {obtain}.")


def seed50_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx) of the code's split: shuffle 0..n-1 as np.random.seed(50) + np.random.shuffle would
    (with a private RandomState, leaving the global state alone); val = the first floor(0.2 n), train = the rest."""
    idx = np.arange(n, dtype=np.int64)
    np.random.RandomState(VAL_SEED).shuffle(idx)
    n_val = int(VAL_FRACTION * n)
    return idx[n_val:], idx[:n_val]


def with_val_split(name: str, num_classes: int, train: ImageSplit, tests: dict[str, ImageSplit], transforms: str,
                   details: dict[str, object]) -> ImageDataset:
    """The dataset whose train/val are the seed-50 split of `train` (in the shuffled order); counts go to details."""
    train_idx, val_idx = seed50_split(len(train))
    splits = {"train": train.subset(train_idx), "val": train.subset(val_idx), **tests}
    details = {**details, "val_split": f"seed{VAL_SEED}_shuffle_first_{VAL_FRACTION:g}",
               "counts": {k: len(s) for k, s in splits.items()}}
    return ImageDataset(name, num_classes, splits, transforms, details)


def _unpickle(path: Path) -> dict:
    """A batch dict (bytes keys, as the Python 2 pickles load with encoding="bytes")."""
    if not path.is_file():
        raise data_error("CIFAR-10", f"{path} is missing", LAYOUT, OBTAIN)
    try:
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as e:
        raise data_error("CIFAR-10", f"{path} is not a readable CIFAR pickle ({type(e).__name__}: {e}); the "
                                     f"file is truncated or corrupt", LAYOUT, OBTAIN) from e
    if not isinstance(batch, dict):
        raise data_error("CIFAR-10", f"{path} holds a {type(batch).__name__}, not a batch dict", LAYOUT, OBTAIN)
    return batch


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) int64 of one batch file (data rows are R, G, B planes)."""
    batch = _unpickle(path)
    if b"data" not in batch or b"labels" not in batch:
        raise data_error("CIFAR-10", f"{path} lacks the key b'data' or b'labels' (has {sorted(batch)})", LAYOUT,
                         OBTAIN)
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels) \
            or (len(labels) and (labels.min() < 0 or labels.max() > 9)):
        raise data_error("CIFAR-10", f"{path}: data is {data.dtype} {data.shape} with {len(labels)} labels, "
                                     f"expected (N, 3072) uint8 and N labels in 0..9", LAYOUT, OBTAIN)
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), labels


def indexed_split(images: np.ndarray, labels: np.ndarray) -> ImageSplit:
    """An in-memory split named by position (the torchvision index as str)."""
    return ImageSplit(labels, [str(i) for i in range(len(labels))], images=images)


def load_cifar10(root: Path) -> ImageDataset:
    """CIFAR-10 from `root` = cifar-10-batches-py: train 40,000 / val 10,000 (seed-50 split of the 50,000,
    names = torchvision index over batches 1..5 in order) and test 10,000, uint8 in memory."""
    root = Path(root)
    if not root.is_dir():
        raise data_error("CIFAR-10", f"folder {root} is missing", LAYOUT, OBTAIN)
    meta = _unpickle(root / "batches.meta")
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta.get(b"label_names", [])]
    train = [_read_batch(root / b) for b in TRAIN_BATCHES]
    images, labels = np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])
    test = indexed_split(*_read_batch(root / "test_batch"))
    sizes = {"train": len(labels), "test": len(test)}
    details = {"source": str(root), "layout": "cifar-10-batches-py", "classes": classes,
               "full_size": sizes == FULL_SIZE, "source_counts": sizes}
    return with_val_split("cifar10", 10, indexed_split(images, labels), {"test": test}, "cifar", details)


def probe(path: Path) -> Finding:
    """`repro data check`: batches.meta, the five training batches and the test batch (pickle ends only)."""
    batches = [*TRAIN_BATCHES, "test_batch"]
    absent = absent_names(path, ["batches.meta"] + batches)
    if "batches.meta" in absent or "test_batch" in absent or all(b in absent for b in batches[:5]):
        return Finding("missing", "", f"missing {', '.join(absent)}")
    try:
        with (path / "batches.meta").open("rb") as f:
            per_batch = pickle.load(f, encoding="latin1")["num_cases_per_batch"]
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError) as err:
        raise bad_file(path / "batches.meta", f"unreadable ({err})") from err
    present = [b for b in batches if b not in absent]
    for name in present:
        _pickle_ends(path / name, per_batch * 3072)
    train = per_batch * (len(present) - 1)
    note = f"missing {', '.join(absent)}" if absent else ""
    return Finding(state_of(not absent), f"train {train}, test {per_batch}", note)


def _pickle_ends(path: Path, min_bytes: int) -> None:
    """A CIFAR batch pickle must hold at least its pixel bytes and end with the STOP opcode."""
    if path.stat().st_size < max(min_bytes, 1):
        raise bad_file(path, "truncated pickle (shorter than its pixel data)")
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b".":
            raise bad_file(path, "truncated pickle (no STOP opcode at the end)")
