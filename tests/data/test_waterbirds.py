"""The corrected-Waterbirds loader on tiny copies of its metadata.csv layout (spec §2.3, D-28)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from repro.data import waterbirds
from repro.data.image_sets import DatasetError
from repro.data.waterbirds import load_waterbirds

ALBATROSS, GULL, SPARROW = "001.Black_footed_Albatross", "059.California_Gull", "118.House_Sparrow"
# (img_filename, y, split, place)
ROWS = [(f"{ALBATROSS}/Black_Footed_Albatross_0001_796111.jpg", 1, 0, 1),
        (f"{SPARROW}/House_Sparrow_0002_111111.jpg", 0, 0, 0),
        (f"{SPARROW}/House_Sparrow_0003_111112.jpg", 0, 0, 1),
        (f"{GULL}/California_Gull_0004_40000.jpg", 1, 1, 0),
        (f"{SPARROW}/House_Sparrow_0005_111113.jpg", 0, 1, 0),
        (f"{SPARROW}/House_Sparrow_0006_111114.jpg", 0, 2, 0),
        (f"{GULL}/California_Gull_0007_40001.jpg", 1, 2, 0),
        (f"{SPARROW}/House_Sparrow_0008_111115.jpg", 0, 2, 1),
        (f"{ALBATROSS}/Black_Footed_Albatross_0009_796112.jpg", 1, 2, 1)]
DRIVE = "1xPNYQskEXuPhuqT5Hj4hXPeJa9jh7liL"


def write_waterbirds(root: Path, rows: list[tuple[str, int, int, int]] = ROWS) -> Path:
    """metadata.csv with the official columns and a small JPEG per row under its species folder."""
    places = ["b/bamboo_forest/00000001.jpg", "o/ocean/00000002.jpg"]
    pd.DataFrame({"img_id": range(1, len(rows) + 1), "img_filename": [r[0] for r in rows],
                  "y": [r[1] for r in rows], "split": [r[2] for r in rows], "place": [r[3] for r in rows],
                  "place_filename": [f"/{places[r[3]]}" for r in rows]}).to_csv(root / "metadata.csv", index=False)
    for i, (name, *_) in enumerate(rows):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (60 + i, 48), (20 * i, 90, 30)).save(root / name)
    return root


def test_labels_groups_and_names(tmp_path):
    data = load_waterbirds(write_waterbirds(tmp_path))
    assert (data.name, data.num_classes, data.transforms) == ("waterbirds", 2, "waterbirds")
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [3, 2, 4]
    assert data.details["counts"] == {"train": 3, "val": 2, "test": 4} and "warning" not in data.details
    train, test = data.splits["train"], data.splits["test"]
    assert train.names == ["Black_Footed_Albatross_0001_796111.jpg", "House_Sparrow_0002_111111.jpg",
                           "House_Sparrow_0003_111112.jpg"] and data.details["names"] == "basename"
    assert train.files == [tmp_path / r[0] for r in ROWS[:3]]
    assert train.labels.tolist() == [1, 0, 0] and test.labels.tolist() == [0, 1, 0, 1]
    assert test.groups.tolist() == [0, 1, 2, 3] and test.groups.dtype == np.int64  # 2 * place + y
    assert train.groups is None and data.splits["val"].groups is None  # group labels reach the test only (§7.9)
    assert data.details["group_counts"]["train"] == {"landbird on land": 1, "waterbird on land": 0,
                                                     "landbird on water": 1, "waterbird on water": 1}


def test_basename_collision_keys_by_relative_path(tmp_path):
    rows = [*ROWS, (f"{GULL}/House_Sparrow_0002_111111.jpg", 1, 0, 1)]  # same basename as a sparrow
    data = load_waterbirds(write_waterbirds(tmp_path, rows))
    names = data.splits["train"].names
    assert names == [r[0].replace("/", "__") for r in ROWS[:3]] + [f"{GULL}__House_Sparrow_0002_111111.jpg"]
    assert len(set(names)) == 4 and data.details["names"] == "relative path"


def test_original_tarball_folder_warns(tmp_path):
    root = tmp_path / "waterbird_complete95_forest2water2"
    root.mkdir()
    data = load_waterbirds(write_waterbirds(root))
    assert "original Waterbirds" in data.details["warning"] and "80.8% on the corrected data" in data.details["warning"]


def test_original_counts_warn(tmp_path, monkeypatch):
    monkeypatch.setattr(waterbirds, "ORIGINAL_COUNTS", {"train": 3, "val": 2, "test": 4})
    details = load_waterbirds(write_waterbirds(tmp_path)).details
    assert "not the MaskTune authors' corrected version" in details["warning"]


def test_missing_metadata(tmp_path):
    write_waterbirds(tmp_path)
    (tmp_path / "metadata.csv").unlink()
    with pytest.raises(DatasetError, match=rf"(?s){re.escape(str(tmp_path / 'metadata.csv'))} is missing.*{DRIVE}"):
        load_waterbirds(tmp_path)


@pytest.mark.parametrize("column", ["img_filename", "y", "split", "place"])
def test_missing_column(tmp_path, column):
    write_waterbirds(tmp_path)
    pd.read_csv(tmp_path / "metadata.csv").drop(columns=column).to_csv(tmp_path / "metadata.csv", index=False)
    with pytest.raises(DatasetError, match=f"metadata.csv lacks the column\\(s\\) {column} "):
        load_waterbirds(tmp_path)


def test_bad_split_value(tmp_path):
    write_waterbirds(tmp_path)
    meta = pd.read_csv(tmp_path / "metadata.csv")
    meta.loc[2, "split"] = 5
    meta.to_csv(tmp_path / "metadata.csv", index=False)
    with pytest.raises(DatasetError, match=r"column split must be one of \[0, 1, 2\], found 5"):
        load_waterbirds(tmp_path)


def test_missing_image_file(tmp_path):
    write_waterbirds(tmp_path)
    (tmp_path / ROWS[6][0]).unlink()
    with pytest.raises(DatasetError, match=f"1 of the 9 images listed in .*metadata.csv are missing under .*, "
                                           f"e.g. {re.escape(ROWS[6][0])}"):
        load_waterbirds(tmp_path)


def test_repeated_image(tmp_path):
    write_waterbirds(tmp_path, [*ROWS, ROWS[0]])
    repeated = re.escape(ROWS[0][0])
    with pytest.raises(DatasetError, match=rf"1 img_filename value\(s\) occur more than once, e.g. {repeated}"):
        load_waterbirds(tmp_path)
