"""The MNIST IDX files under a data root: the official layout (`MNIST/raw/*.gz` or `MNIST/*.gz`) or the
shared 5,000-image training subset (`MNIST/subset/train-5k-*`), read into uint8 arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.data.idx import read_idx
from repro.data.image_sets import DatasetError
from repro.data.probes import bad_file, Finding, idx_count, split_finding

FULL = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
SUBSET = ("subset/train-5k-images-idx3-ubyte.gz", "subset/train-5k-labels-idx1-ubyte.gz")
TEST = ("raw/t10k-images-idx3-ubyte.gz", "raw/t10k-labels-idx1-ubyte.gz")
OBTAIN = "torchvision.datasets.MNIST(root, download=True) writes the official files to <root>/MNIST/raw/."


def _find(mnist_dir: Path, name: str) -> Path | None:
    """An MNIST file in `<dir>/<name>` or `<dir>/raw/<basename>` (torchvision's layout)."""
    return next((p for p in (mnist_dir / name, mnist_dir / "raw" / Path(name).name) if p.exists()), None)


def train_files(mnist_dir: Path, train_subset: bool | None = None) -> tuple[Path, Path, bool]:
    """The official training files (unless `train_subset` is True) when present, else the 5,000-image
    subset (unless `train_subset` is False); third item: subset used."""
    full = [_find(mnist_dir, n) for n in FULL]
    subset = [mnist_dir / n for n in SUBSET]
    if train_subset is not True and all(full):
        return full[0], full[1], False
    if train_subset is not False and all(p.exists() for p in subset):
        return subset[0], subset[1], True
    wanted = {None: [FULL, SUBSET], False: [FULL], True: [SUBSET]}[train_subset]
    raise DatasetError(
        f"no MNIST training images under {mnist_dir}: expected " + " or ".join(" and ".join(f) for f in wanted)
        + f" (the official files in {mnist_dir} or {mnist_dir}/raw); {OBTAIN}")


def test_files(mnist_dir: Path) -> tuple[Path, Path]:
    """The official test images and labels."""
    found = [_find(mnist_dir, n) for n in TEST]
    if not all(found):
        raise DatasetError(f"MNIST test files missing under {mnist_dir}: expected {TEST[0]} and {TEST[1]}; {OBTAIN}")
    return found[0], found[1]


def read_mnist(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) in 0..9 from a pair of IDX files, else a DatasetError."""
    try:
        x, y = read_idx(images), read_idx(labels)
    except ValueError as e:
        raise DatasetError(str(e)) from e
    if x.dtype != np.uint8 or x.shape[1:] != (28, 28) or y.shape != (len(x),) or (y > 9).any():
        raise DatasetError(f"{images} ({x.shape}) and {labels} ({y.shape}) are not N 28x28 uint8 MNIST images "
                           "with N labels in 0..9")
    return x, y


def _idx_split(folders: tuple[Path, ...], prefix: str) -> tuple[int | None, list[str]]:
    """Item count of the `<prefix>-images-idx3-ubyte[.gz]` / `-labels-idx1-` pair, or None and the absent names."""
    found, absent = {}, []
    for kind, shape in (("images-idx3", (28, 28)), ("labels-idx1", ())):
        stem = f"{prefix}-{kind}-ubyte"
        path = next((d / n for d in folders for n in (f"{stem}.gz", stem) if (d / n).is_file()), None)
        if path is None:
            absent.append(f"{stem}.gz")
        else:
            found[kind] = (path, idx_count(path, shape))
    if absent:
        return None, absent
    (images, n_images), (_, n_labels) = found.values()
    if n_images != n_labels:
        raise bad_file(images, f"{n_images} images but {n_labels} labels")
    return n_images, []



def probe(path: Path) -> Finding:
    """`repro data check`: the official files (raw/ or the root), else the 5k training subset."""
    folders = (path / "raw", path)
    test, test_absent = _idx_split(folders, "t10k")
    train, train_absent = _idx_split(folders, "train")
    if test is None:
        return Finding("missing", "", f"raw/ lacks {', '.join(test_absent)}")
    if train is not None:
        return split_finding({"train": train, "test": test}, {"train": 60_000, "test": 10_000})
    subset, _ = _idx_split((path / "subset",), "train-5k")
    if subset is None:
        return Finding("missing", f"test {test}", f"raw/ lacks {', '.join(train_absent)} (and no subset/train-5k-*)")
    return Finding("subset", f"train {subset} (5k subset), test {test}",
                   f"raw/ lacks {', '.join(train_absent)}; using subset/train-5k-* ({subset} of 60000 training images)")
