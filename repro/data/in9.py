"""IN-9L (train, val) and the four Background Challenge test variants of Table 3 (specs/masktune.md §2.4, D-20).

The label is the integer prefix of the class folder ("03_reptile" -> 3). Files are sorted by name within each
class (not the code's filesystem-dependent glob order, cf. D-18). Names are "<class folder>__<file name>",
unique within a split; the masked copy of an image is saved as masked/<label>/<name>.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.data.image_files import SHOW, Source, flat_name
from repro.data.image_sets import ImageDataset, ImageSplit

CLASSES = ("00_dog", "01_bird", "02_wheeled vehicle", "03_reptile", "04_carnivore", "05_insect",
           "06_musical instrument", "07_primate", "08_fish")
VARIANTS = ("original", "mixed_same", "mixed_rand", "only_fg")  # evaluated explicitly (D-20)
SUFFIXES = (".jpg", ".jpeg", ".png")
SOURCE = Source(
    "IN-9L / Background Challenge",
    "<in9l>/{train,val}/<class>/* and <bg_challenge>/<variant>/val/<class>/* for the variants "
    f"{', '.join(VARIANTS)}, with the class folders {', '.join(CLASSES)}",
    "IN-9L and the challenge test sets come from MadryLab/backgrounds_challenge (its IN-9L download links are "
    "reported dead, so in9l/ must be supplied by the user)")


def label(class_folder: str) -> int:
    """The integer before the first "_" of a class folder name."""
    return int(class_folder.split("_", 1)[0])


def class_split(folder: Path) -> ImageSplit:
    """The images of `folder/<class>/`, class by class, sorted by file name within each class."""
    files = {c: sorted((p for p in (folder / c).iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES),
                       key=lambda p: p.name) for c in CLASSES}
    empty = [str(folder / c) for c in CLASSES if not files[c]]
    if empty:
        raise SOURCE.error(f"no {'/'.join(SUFFIXES)} images in {', '.join(empty)}")
    ordered = [(c, p) for c in CLASSES for p in files[c]]
    return ImageSplit(np.array([label(c) for c, _ in ordered], dtype=np.int64),
                      [flat_name(f"{c}/{p.name}") for c, p in ordered], files=[p for _, p in ordered])


def load_in9(train_root: Path, test_root: Path) -> ImageDataset:
    """train and val from `train_root` (in9l/), test_<variant> for the four Table 3 variants from `test_root`."""
    folders = {"train": train_root / "train", "val": train_root / "val"}
    folders |= {f"test_{v}": test_root / v / "val" for v in VARIANTS}
    missing = [str(f) for f in folders.values() if not f.is_dir()]
    missing += [str(f / c) for f in folders.values() if f.is_dir() for c in CLASSES if not (f / c).is_dir()]
    if missing:
        raise SOURCE.error(f"{len(missing)} folder(s) missing: {', '.join(missing[:SHOW])}")
    splits = {s: class_split(f) for s, f in folders.items()}
    return ImageDataset("in9", len(CLASSES), splits, "in9", {
        "train_root": str(train_root), "test_root": str(test_root), "variants": list(VARIANTS),
        "counts": {s: len(split) for s, split in splits.items()},
        "class_counts": {s: np.bincount(split.labels, minlength=len(CLASSES)).tolist() for s, split in splits.items()}})
