"""Cats vs Dogs from the Kaggle "Dogs vs. Cats" train folder (specs/masktune.md §2.7, D-17, D-18).

Files are ordered by (class, n) before any draw. The test split comes from the user's `cat_idx.txt` and
`dog_idx.txt` (lines `<n>.jpg`) when both exist, otherwise from a seeded draw of 20% per class (2,500 + 2,500
of the full 12,500 + 12,500); the seed-50 80/20 split of the rest gives train/val. A split keeps the original
JPEGs (what MaskTune masks) and the 64 px bicubic resize the model sees.
"""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from repro.data.cifar10 import data_error, with_val_split
from repro.data.image_mode import to_8bit
from repro.data.image_sets import DatasetError, ImageDataset, ImageSplit
from repro.data.probes import Finding, list_files, state_of, verify_ends

CLASSES = ("cat", "dog")  # label = position
FULL_PER_CLASS = 12_500
TEST_SEED = 0  # spec §2.7: seeded 2,500 + 2,500 test draw when no index files are given
TEST_FRACTION = 0.2
FILE_RE = re.compile(r"^(cat|dog)\.(\d+)\.jpg$")
INDEX_RE = re.compile(r"^(\d+)\.jpg$")
LAYOUT = ("dogs-vs-cats/train/ holding cat.<n>.jpg and dog.<n>.jpg (optionally dogs-vs-cats/cat_idx.txt and "
          "dogs-vs-cats/dog_idx.txt, one `<n>.jpg` per line, naming the test images)")
OBTAIN = ("kaggle competitions download -c dogs-vs-cats, then unzip train.zip into dogs-vs-cats/ (giving "
          "dogs-vs-cats/train/)")


def _error(problem: str) -> DatasetError:
    return data_error("Cats vs Dogs", problem, LAYOUT, OBTAIN)


def _decode(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(to_8bit(im, "RGB").resize((size, size), Image.BICUBIC))
    except (OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f"{path}: cannot be decoded as an image ({type(e).__name__}: {e}); replace the file "
                           f"with a readable copy or remove it") from e


def decode_resized(files: list[Path], size: int) -> np.ndarray:
    """(N, size, size, 3) uint8: each file opened with PIL, made 8-bit RGB (`to_8bit`), `resize((size, size), BICUBIC)`."""
    with ThreadPoolExecutor() as pool:
        images = list(pool.map(lambda f: _decode(f, size), files))
    return np.stack(images) if images else np.empty((0, size, size, 3), np.uint8)


def _scan(train_dir: Path) -> list[tuple[int, int, Path]]:
    """(label, n, path) of every `<class>.<n>.jpg`, sorted by (label, n); each class must be present."""
    if not train_dir.is_dir():
        raise _error(f"folder {train_dir} is missing")
    found = sorted((CLASSES.index(m[1]), int(m[2]), p) for p in train_dir.iterdir() if (m := FILE_RE.match(p.name)))
    for label, cls in enumerate(CLASSES):
        if not any(lab == label for lab, _, _ in found):
            raise _error(f"{train_dir} holds no {cls}.<n>.jpg files")
    return found


def _read_index(path: Path, cls: str, by_name: dict[str, int]) -> list[int]:
    """Positions of the files a `<cls>_idx.txt` names; every named file must exist."""
    positions, absent = [], []
    for k, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        if not (m := INDEX_RE.match(line.strip())):
            raise _error(f"{path} line {k} is {line!r}, expected `<n>.jpg`")
        name = f"{cls}.{int(m[1])}.jpg"
        if name in by_name:
            positions.append(by_name[name])
        else:
            absent.append(name)
    if absent:
        raise _error(f"{path} names {len(absent)} test images missing from train/ (first: {', '.join(absent[:5])})")
    return positions


def _test_positions(root: Path, found: list[tuple[int, int, Path]]) -> tuple[list[int], str]:
    """Positions (into `found`) of the test images, and the rule that chose them."""
    index_files = [root / f"{cls}_idx.txt" for cls in CLASSES]
    present = [f.is_file() for f in index_files]
    if all(present):
        by_name = {p.name: i for i, (_, _, p) in enumerate(found)}
        return sorted({i for f, cls in zip(index_files, CLASSES) for i in _read_index(f, cls, by_name)}), "index_files"
    if any(present):
        raise _error(f"only {index_files[present.index(True)]} exists; give both cat_idx.txt and dog_idx.txt or "
                     f"neither (then a seeded test split is drawn)")
    rng, positions, per_class = np.random.RandomState(TEST_SEED), [], []
    for label in range(len(CLASSES)):
        of_class = np.array([i for i, (lab, _, _) in enumerate(found) if lab == label])
        per_class.append(len(of_class))
        positions += of_class[rng.choice(len(of_class), int(TEST_FRACTION * len(of_class)), replace=False)].tolist()
    rule = "seeded_2500_per_class" if per_class == [FULL_PER_CLASS] * 2 else "seeded_20pct_per_class_subset"
    return sorted(positions), rule


def load_cats_dogs(root: Path, image_size: int = 64) -> ImageDataset:
    """Cats (0) vs dogs (1) from `root` = dogs-vs-cats: test from the index files or the seeded 20% per class,
    then the seed-50 80/20 train/val split of the rest (16,000 / 4,000 / 5,000 on the full set)."""
    root = Path(root)
    found = _scan(root / "train")
    test_pos, rule = _test_positions(root, found)
    files = [p for _, _, p in found]
    labels = np.array([lab for lab, _, _ in found], dtype=np.int64)
    images = decode_resized(files, image_size)
    full = ImageSplit(labels, [p.name for p in files], images=images, files=files)
    is_test = np.zeros(len(found), bool)
    is_test[test_pos] = True
    test = full.subset(np.flatnonzero(is_test))
    per_class = [int((labels == k).sum()) for k in range(len(CLASSES))]
    details = {"source": str(root), "layout": "kaggle dogs-vs-cats train/", "classes": list(CLASSES),
               "per_class": per_class, "full_size": per_class == [FULL_PER_CLASS] * 2, "image_size": image_size,
               "resize": "PIL convert('RGB').resize(BICUBIC)", "test_split": rule, "test_files": test.names}
    return with_val_split("cats_dogs", 2, full.subset(np.flatnonzero(~is_test)), {"test": test}, "catsdogs", details)


def probe(path: Path) -> Finding:
    """`repro data check`: the cat and dog files of train/, against the full 12,500 per class."""
    folder = path / "train"
    names = list_files(folder, (".jpg",))
    per = Counter(n.split(".", 1)[0] for n in names)
    counts = f"cat {per['cat']}, dog {per['dog']}"
    if not per["cat"] or not per["dog"]:
        return Finding("missing", counts, "train/ lacks cat.<n>.jpg or dog.<n>.jpg files")
    verify_ends(folder, [n for n in names if n.startswith(("cat.", "dog."))])
    complete = per["cat"] >= FULL_PER_CLASS and per["dog"] >= FULL_PER_CLASS
    return Finding(state_of(complete), counts, "" if complete else f"{per['cat'] + per['dog']} of {2 * FULL_PER_CLASS} images")
