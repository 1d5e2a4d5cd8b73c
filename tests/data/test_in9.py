"""The IN-9L / Background Challenge loader on a tiny copy of the MadryLab layout (spec §2.4, D-20)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repro.data.image_sets import DatasetError
from repro.data.in9 import load_in9

CLASSES = ["00_dog", "01_bird", "02_wheeled vehicle", "03_reptile", "04_carnivore", "05_insect",
           "06_musical instrument", "07_primate", "08_fish"]
VARIANTS = ["original", "mixed_same", "mixed_rand", "only_fg"]
PER_SPLIT = {"train": 3, "val": 1, "test": 2}  # images per class


def write_in9(tmp_path: Path, per_split: dict[str, int] = PER_SPLIT) -> tuple[Path, Path]:
    """in9l/{train,val}/<class>/ and bg_challenge/<variant>/val/<class>/ of tiny JPEGs (`per_split` images per
    class), written out of name order, with a non-image file beside them; plus an unused variant (mixed_next)."""
    in9l, bg = tmp_path / "in9l", tmp_path / "bg_challenge"
    folders = [(in9l / "train", per_split["train"]), (in9l / "val", per_split["val"])]
    folders += [(bg / v / "val", per_split["test"]) for v in [*VARIANTS, "mixed_next"]]
    for folder, n in folders:
        for k, cls in enumerate(CLASSES):
            (folder / cls).mkdir(parents=True)
            for i in reversed(range(n)):
                Image.new("RGB", (40, 30), (25 * k, 10 * i, 80)).save(folder / cls / f"n0{k}_{i}.JPEG", "JPEG")
            (folder / cls / "README.txt").write_text("not an image")
    return in9l, bg


def test_splits_labels_and_names(tmp_path):
    in9l, bg = write_in9(tmp_path)
    data = load_in9(in9l, bg)
    assert (data.name, data.num_classes, data.transforms) == ("in9", 9, "in9")
    assert list(data.splits) == ["train", "val", "test_original", "test_mixed_same", "test_mixed_rand",
                                 "test_only_fg"]
    assert data.tests == [f"test_{v}" for v in VARIANTS]
    assert data.details["counts"] == {"train": 27, "val": 9} | {f"test_{v}": 18 for v in VARIANTS}
    train = data.splits["train"]
    assert train.labels.tolist() == [k for k in range(9) for _ in range(3)] and train.labels.dtype == np.int64
    assert train.names[:4] == ["00_dog__n00_0.JPEG", "00_dog__n00_1.JPEG", "00_dog__n00_2.JPEG", "01_bird__n01_0.JPEG"]
    assert "06_musical instrument__n06_2.JPEG" in train.names and len(set(train.names)) == 27
    assert train.files[3] == in9l / "train" / "01_bird" / "n01_0.JPEG"
    rand = data.splits["test_mixed_rand"]
    assert rand.files[-1] == bg / "mixed_rand" / "val" / "08_fish" / "n08_1.JPEG" and rand.labels[-1] == 8
    assert all(s.groups is None for s in data.splits.values())
    assert data.details["class_counts"]["val"] == [1] * 9


def test_missing_class_folder(tmp_path):
    in9l, bg = write_in9(tmp_path)
    shutil.rmtree(bg / "only_fg" / "val" / "05_insect")
    missing = re.escape(str(bg / "only_fg" / "val" / "05_insect"))
    with pytest.raises(DatasetError, match=rf"(?s)1 folder\(s\) missing: {missing}.*MadryLab/backgrounds_challenge"):
        load_in9(in9l, bg)


@pytest.mark.parametrize("part", ["in9l/val", "bg_challenge/mixed_same"])
def test_missing_split_or_variant(tmp_path, part):
    in9l, bg = write_in9(tmp_path)
    shutil.rmtree(tmp_path / part)
    expected = tmp_path / part / ("" if part.startswith("in9l") else "val")
    with pytest.raises(DatasetError, match=f"1 folder\\(s\\) missing: {re.escape(str(expected))}"):
        load_in9(in9l, bg)


def test_empty_class_folder(tmp_path):
    in9l, bg = write_in9(tmp_path)
    for f in (in9l / "train" / "03_reptile").glob("*.JPEG"):
        f.unlink()
    empty = re.escape(str(in9l / "train" / "03_reptile"))
    with pytest.raises(DatasetError, match=f"no .jpg/.jpeg/.png images in {empty}"):
        load_in9(in9l, bg)
