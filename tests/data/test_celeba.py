"""The CelebA loader on tiny copies of the Kaggle "celeba-dataset" layout (spec §2.2, D-21)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from repro.data import celeba
from repro.data.celeba import load_celeba
from repro.data.image_sets import DatasetError

ATTRIBUTES = (  # the 40 columns of the Kaggle list_attr_celeba.csv after image_id, in the official order
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair "
    "Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones "
    "Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline "
    "Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick "
    "Wearing_Necklace Wearing_Necktie Young").split()
# (partition, Blond_Hair, Male) per image 000001.jpg, 000002.jpg, ...: train covers 3 groups, test all 4
ROWS = [(0, -1, -1), (0, 1, -1), (0, -1, 1), (0, 1, -1), (0, -1, -1),
        (1, 1, 1), (1, -1, -1),
        (2, -1, -1), (2, 1, -1), (2, -1, 1), (2, 1, 1), (2, 1, 1)]
KAGGLE = "kaggle datasets download -d jessicali9530/celeba-dataset"


def write_celeba(root: Path, nested: bool = False) -> Path:
    """The Kaggle files for ROWS: both CSVs and 178x218 JPEGs, in img_align_celeba/ (twice nested if asked)."""
    images = root / "img_align_celeba" / ("img_align_celeba" if nested else "")
    images.mkdir(parents=True)
    ids = [f"{i + 1:06d}.jpg" for i in range(len(ROWS))]
    rng = np.random.default_rng(0)
    attrs = pd.DataFrame(rng.choice([-1, 1], (len(ROWS), len(ATTRIBUTES))), columns=ATTRIBUTES)
    attrs["Blond_Hair"], attrs["Male"] = [r[1] for r in ROWS], [r[2] for r in ROWS]
    attrs.insert(0, "image_id", ids)
    attrs.to_csv(root / "list_attr_celeba.csv", index=False)
    pd.DataFrame({"image_id": ids, "partition": [r[0] for r in ROWS]}).to_csv(root / "list_eval_partition.csv",
                                                                             index=False)
    for i, name in enumerate(ids):
        Image.new("RGB", (178, 218), (10 * i, 100, 200)).save(images / name, quality=95)
    return images


def test_labels_groups_and_splits(tmp_path):
    images = write_celeba(tmp_path)
    data = load_celeba(tmp_path)
    assert (data.name, data.num_classes, data.transforms) == ("celeba", 2, "celeba")
    assert list(data.splits) == ["train", "val", "test"] and data.tests == ["test"]
    assert [len(data.splits[s]) for s in data.splits] == [5, 2, 5]
    train, test = data.splits["train"], data.splits["test"]
    assert train.names == ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg", "000005.jpg"]
    assert train.files == [images / n for n in train.names] and all(f.is_file() for f in train.files)
    assert train.labels.tolist() == [0, 1, 0, 1, 0] and train.labels.dtype == np.int64
    assert test.names == [f"{i:06d}.jpg" for i in range(8, 13)]
    assert test.labels.tolist() == [0, 1, 0, 1, 1]
    assert test.groups.tolist() == [0, 1, 2, 3, 3] and test.groups.dtype == np.int64  # 2 * Male + Blond
    assert train.groups is None and data.splits["val"].groups is None  # group labels reach the test only (§7.9)
    assert data.details["group_counts"]["train"] == {"female non-blond": 2, "female blond": 2,
                                                     "male non-blond": 1, "male blond": 0}
    assert data.details["group_counts"]["val"]["male blond"] == 1
    assert data.details["counts"] == {"train": 5, "val": 2, "test": 5} and data.details["subset"] is True


def test_full_counts_are_not_a_subset(tmp_path, monkeypatch):
    write_celeba(tmp_path)
    monkeypatch.setattr(celeba, "OFFICIAL", {"train": 5, "val": 2, "test": 5})
    assert load_celeba(tmp_path).details["subset"] is False


def test_kaggle_double_nesting_works(tmp_path):
    images = write_celeba(tmp_path, nested=True)
    data = load_celeba(tmp_path)
    assert data.details["image_folder"] == str(images)
    assert data.splits["test"].files[0] == images / "000008.jpg"
    assert data.splits["test"].groups.tolist() == [0, 1, 2, 3, 3]


@pytest.mark.parametrize("csv", ["list_attr_celeba.csv", "list_eval_partition.csv"])
def test_missing_csv(tmp_path, csv):
    write_celeba(tmp_path)
    (tmp_path / csv).unlink()
    with pytest.raises(DatasetError, match=rf"(?s)CelebA: {re.escape(str(tmp_path / csv))} is missing.*{KAGGLE}"):
        load_celeba(tmp_path)


@pytest.mark.parametrize("csv, column", [("list_attr_celeba.csv", "Male"), ("list_attr_celeba.csv", "Blond_Hair"),
                                         ("list_eval_partition.csv", "partition")])
def test_missing_column(tmp_path, csv, column):
    write_celeba(tmp_path)
    pd.read_csv(tmp_path / csv).drop(columns=column).to_csv(tmp_path / csv, index=False)
    with pytest.raises(DatasetError, match=f"{csv} lacks the column\\(s\\) {column} "):
        load_celeba(tmp_path)


def test_invalid_partition_value(tmp_path):
    write_celeba(tmp_path)
    frame = pd.read_csv(tmp_path / "list_eval_partition.csv")
    frame.loc[3, "partition"] = 3
    frame.to_csv(tmp_path / "list_eval_partition.csv", index=False)
    with pytest.raises(DatasetError, match=r"column partition must be one of \[0, 1, 2\], found 3 in 1 row"):
        load_celeba(tmp_path)


def test_attribute_values_must_be_signs(tmp_path):
    write_celeba(tmp_path)
    frame = pd.read_csv(tmp_path / "list_attr_celeba.csv")
    frame.loc[0, "Male"] = 0
    frame.to_csv(tmp_path / "list_attr_celeba.csv", index=False)
    with pytest.raises(DatasetError, match=r"column Male must be one of \[-1, 1\], found 0"):
        load_celeba(tmp_path)


def test_missing_image_file(tmp_path):
    images = write_celeba(tmp_path, nested=True)
    (images / "000004.jpg").unlink()
    (images / "000011.jpg").unlink()
    with pytest.raises(DatasetError, match=rf"(?s)2 of the 12 images .* missing under {re.escape(str(images))}, "
                                           rf"e\.g\. 000004\.jpg, 000011\.jpg.*{KAGGLE}"):
        load_celeba(tmp_path)


def test_missing_image_folder(tmp_path):
    write_celeba(tmp_path)
    (tmp_path / "img_align_celeba").rename(tmp_path / "images")
    with pytest.raises(DatasetError, match=re.escape(f"no image folder {tmp_path / 'img_align_celeba'}")):
        load_celeba(tmp_path)


def test_csvs_listing_different_images(tmp_path):
    write_celeba(tmp_path)
    frame = pd.read_csv(tmp_path / "list_eval_partition.csv")
    frame.iloc[:-1].to_csv(tmp_path / "list_eval_partition.csv", index=False)
    with pytest.raises(DatasetError, match="list different images: 1 appear in only one, e.g. 000012.jpg"):
        load_celeba(tmp_path)
