"""SVHN cropped digits from torchvision's `train_32x32.mat` / `test_32x32.mat` (specs/masktune.md §2.6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.data.cifar10 import data_error, indexed_split, with_val_split
from repro.data.image_sets import ImageDataset, ImageSplit
from repro.data.probes import bad_file, Finding, absent_names, mat_shapes, split_finding

FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}  # the `extra` split is not used
FULL_SIZE = {"train": 73_257, "test": 26_032}
LAYOUT = "svhn/ holding train_32x32.mat and test_32x32.mat (MATLAB files with X (32, 32, 3, N) uint8 and y (N, 1))"
OBTAIN = ("torchvision.datasets.SVHN(root=<data root>/svhn, split=\"train\", download=True) and the same with "
          "split=\"test\" (or download them from http://ufldl.stanford.edu/housenumbers/)")


def _read_mat(path: Path) -> ImageSplit:
    """Images (N, 32, 32, 3) uint8 and labels (N,) with 10 -> 0, as torchvision reads them."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    if not path.is_file():
        raise data_error("SVHN", f"{path} is missing", LAYOUT, OBTAIN)
    try:
        mat = loadmat(path)
    except (MatReadError, ValueError, TypeError, OSError, NotImplementedError) as e:
        raise data_error("SVHN", f"{path} is not a readable MATLAB file ({type(e).__name__}: {e})", LAYOUT,
                         OBTAIN) from e
    if "X" not in mat or "y" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise data_error("SVHN", f"{path} lacks the variable X or y (has {keys})", LAYOUT, OBTAIN)
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y) \
            or (len(y) and (y.min() < 0 or y.max() > 10)):
        raise data_error("SVHN", f"{path}: X is {x.dtype} {x.shape} with {len(y)} labels, expected "
                                 f"(32, 32, 3, N) uint8 and N labels in 0..10", LAYOUT, OBTAIN)
    y[y == 10] = 0
    return indexed_split(np.ascontiguousarray(x.transpose(3, 0, 1, 2)), y)


def load_svhn(root: Path) -> ImageDataset:
    """SVHN from `root` (the folder with the .mat files): train 58,606 / val 14,651 (seed-50 split of the
    73,257, names = torchvision index) and test 26,032, uint8 in memory."""
    root = Path(root)
    if not root.is_dir():
        raise data_error("SVHN", f"folder {root} is missing", LAYOUT, OBTAIN)
    train, test = (_read_mat(root / FILES[k]) for k in ("train", "test"))
    sizes = {"train": len(train), "test": len(test)}
    details = {"source": str(root), "layout": "svhn .mat (format 1, cropped digits)", "label_10_is_digit": 0,
               "full_size": sizes == FULL_SIZE, "source_counts": sizes}
    return with_val_split("svhn", 10, train, {"test": test}, "svhn", details)


def probe(path: Path) -> Finding:
    """`repro data check`: the X and y variable headers of both MATLAB files."""
    absent = absent_names(path, tuple(FILES.values()))
    if absent:
        return Finding("missing", "", f"missing {', '.join(absent)}")
    sizes = {}
    for split, name in FILES.items():
        mat = path / name
        shapes = mat_shapes(mat)
        x, y = shapes.get("X", ()), shapes.get("y", ())
        if len(x) != 4 or x[:3] != (32, 32, 3) or y[:1] != x[3:]:
            raise bad_file(mat, f"variables X {x} / y {y}, expected X (32, 32, 3, N) and y (N, 1)")
        sizes[split] = x[3]
    return split_finding(sizes, FULL_SIZE)
