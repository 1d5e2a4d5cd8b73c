"""CelebA, Blond_Hair vs Male, from the Kaggle "celeba-dataset" files (specs/masktune.md §2.2, D-21).

Target Blond_Hair (-1 -> 0, 1 -> 1); group = 2 * Male + Blond_Hair, so groups 0-3 are female non-blond,
female blond, male non-blond, male blond. Images keep the CSV order of `list_eval_partition.csv`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from repro.data.image_files import SHOW, SPLITS, Source, coded_splits
from repro.data.image_sets import ImageDataset
from repro.data.probes import (Finding, absent_names, csv_rows, list_files, relative, require_columns, state_of,
                               verify_ends)

ATTRS, PARTITION, IMAGES = "list_attr_celeba.csv", "list_eval_partition.csv", "img_align_celeba"
OFFICIAL = {"train": 162_770, "val": 19_867, "test": 19_962}
GROUPS = ("female non-blond", "female blond", "male non-blond", "male blond")
SIGN = {-1: 0, 1: 1}
SOURCE = Source(
    "CelebA",
    f"<root>/{ATTRS} (image_id + 40 attributes in -1/1), <root>/{PARTITION} (image_id, partition 0/1/2), "
    f"<root>/{IMAGES}/<image_id> or Kaggle's doubly nested <root>/{IMAGES}/{IMAGES}/<image_id>",
    "`kaggle datasets download -d jessicali9530/celeba-dataset` and unzip it into celeba/ (the root)")


def image_folder(root: Path) -> Path:
    """`img_align_celeba/img_align_celeba` (the Kaggle zip) when present, else `img_align_celeba` (D-21)."""
    single = root / IMAGES
    nested = single / IMAGES
    if nested.is_dir():
        return nested
    if single.is_dir():
        return single
    raise SOURCE.error(f"no image folder {single}")


def load_celeba(root: Path) -> ImageDataset:
    """The official train / val / test partition; a partial copy is accepted and marked `details["subset"]`."""
    attrs = SOURCE.read_csv(root / ATTRS, ["image_id", "Blond_Hair", "Male"], "image_id")
    partition = SOURCE.read_csv(root / PARTITION, ["image_id", "partition"], "image_id")
    for frame, name in ((attrs, ATTRS), (partition, PARTITION)):
        SOURCE.unique(frame["image_id"].tolist(), "image_id", root / name)
    unmatched = sorted(set(partition["image_id"]) ^ set(attrs["image_id"]))
    if unmatched:
        raise SOURCE.error(f"{root / ATTRS} and {root / PARTITION} list different images: {len(unmatched)} "
                           f"appear in only one, e.g. {', '.join(unmatched[:SHOW])}")
    rows = partition.merge(attrs, on="image_id", how="inner")  # keeps the partition file's order
    split = SOURCE.codes(rows, "partition", {0: 0, 1: 1, 2: 2}, root / PARTITION)
    blond = SOURCE.codes(rows, "Blond_Hair", SIGN, root / ATTRS)
    male = SOURCE.codes(rows, "Male", SIGN, root / ATTRS)
    names = rows["image_id"].tolist()
    folder = image_folder(root)
    files = SOURCE.existing_files(folder, names, root / ATTRS)
    splits, group_counts = coded_splits(split, blond, 2 * male + blond, names, files, GROUPS)
    counts = {s: len(splits[s]) for s in SPLITS}
    return ImageDataset("celeba", 2, splits, "celeba", {
        "root": str(root), "image_folder": str(folder), "counts": counts, "official_counts": OFFICIAL,
        "subset": counts != OFFICIAL, "group_counts": group_counts, "groups": list(GROUPS)})


def probe(path: Path) -> Finding:
    """`repro data check`: the two CSVs and the image folder, against the official partition."""
    nested = path / IMAGES / IMAGES
    folder = nested if nested.is_dir() else path / IMAGES
    absent = absent_names(path, (ATTRS, PARTITION, f"{IMAGES}/"))
    if absent:
        return Finding("missing", "", f"missing {', '.join(absent)}")
    require_columns(path / ATTRS, ("image_id", "Blond_Hair", "Male"))
    split = Counter(r["partition"] for r in csv_rows(path / PARTITION, ("image_id", "partition")))
    names = list_files(folder, (".jpg",))
    counts = f"train {split['0']}, val {split['1']}, test {split['2']}; images {len(names)}"
    if not names:
        return Finding("missing", counts, f"{relative(folder, path)}/ holds no .jpg")
    verify_ends(folder, names)
    done = len(names) >= sum(OFFICIAL.values()) and (split["0"], split["1"], split["2"]) == tuple(OFFICIAL.values())
    note = "" if done else f"{len(names)} of {sum(OFFICIAL.values())} images"
    if folder == nested:
        note = "; ".join(filter(None, (note, "nested img_align_celeba/img_align_celeba/ (Kaggle zip; masktune D-21)")))
    return Finding(state_of(done), counts, note)
