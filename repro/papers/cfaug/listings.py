"""The file listings of the three cfaug datasets in their official layouts (specs/cfaug.md §3.0-3.3): one `Item`
per image with its label and the paths of its mask source and CAGAN infill; errors name the path and the fix."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import numpy as np
import torch

from repro.data.image_files import SHOW, Source
from repro.data.in9 import CLASSES, SUFFIXES, class_split
from repro.data.waterbirds import METADATA, ORIGINAL_FOLDER

DATASETS = ("in9", "waterbirds", "cct")
EVALS = {"in9": ("val", "original", "mixed_same", "mixed_rand", "mixed_next"),
         "waterbirds": ("val", "original", "flip"),
         "cct": ("val", "cis_test", "trans_test")}
TRAIN_WORKERS, EVAL_BATCH = 4, 256  # §6.1: train loader shuffled, 4 workers, drop_last false; eval batch 256
RATIO_SEED = 2020  # the data_ratio subset permutation, independent of the run seed (§6.1)
EMPTY_CATEGORY = 30  # CCT "empty" (§3.3)
CCT_FILES = {"train": "train", "val": "cis_val", "cis_test": "cis_test", "trans_test": "trans_test"}
C16 = ("cagan=True needs the cfaug authors' precomputed CF(CAGAN) infills (their generator is not "
       "released)")

IN9 = Source(
    "IN-9 (Backgrounds Challenge, cfaug)",
    "bg_challenge/train/original/{train,val}/<class>/<img>, bg_challenge/train/no_fg/train/<class>/<same img> (fg "
    "masks), bg_challenge/train/original_bbox_cf_cagan/train/<class>/<img> (CAGAN infills, for cagan only), "
    "bg_challenge/test/{original,mixed_same,mixed_rand,mixed_next}/val/<class>/<img>, "
    "bg_challenge/test/fg_mask/val/<class>/<stem>.npy (saliency only) and, for data_ratio > 1, "
    f"bg_challenge/train/in9l/train/<class>/<img>; class folders {', '.join(CLASSES)}",
    "backgrounds_challenge_data.tar.gz from the GitHub releases of MadryLab/backgrounds_challenge, untarred into "
    "bg_challenge/test/; the original, no_fg and in9l training sets from the Dropbox links of that README, into "
    "bg_challenge/train/; the CAGAN infills from the cfaug authors' Google-Drive tarball referenced by their "
    "datasets/ download scripts")
WATERBIRDS = Source(
    "Waterbirds (cfaug)",
    f"waterbird/{ORIGINAL_FOLDER}/{METADATA} (img_id, img_filename, y, split, place, place_filename) with the images "
    f"at waterbird/{ORIGINAL_FOLDER}/<img_filename>, the CUB segmentations at waterbird/segmentations/<img_filename "
    "as .png> and the CAGAN infills at waterbird/cagan/<img_filename>",
    "https://nlp.stanford.edu/data/dro/waterbird_complete95_forest2water2.tar.gz untarred into waterbird/; the "
    "CUB-200-2011 segmentations and the CAGAN infills from the cfaug authors' Google-Drive files referenced by their "
    "datasets/ download scripts")
CCT = Source(
    "Caltech Camera Traps (CCT-20, cfaug)",
    "cct/eccv_18_all_images_sm/<image_id>.jpg, cct/eccv_18_annotation_files/{train,cis_val,cis_test,trans_test}"
    "_annotations.json (COCO style: images, annotations, categories) and the CAGAN infills at cct/cagan/<image_id>.jpg",
    "https://lila.science/datasets/caltech-camera-traps: eccv_18_all_images_sm.tar.gz and eccv_18_annotations.tar.gz "
    "untarred into cct/; the CAGAN infills from the cfaug authors' Google-Drive files")
SOURCES = {"in9": IN9, "waterbirds": WATERBIRDS, "cct": CCT}


@dataclass(frozen=True)
class Item:
    """One sample: its image, label, stratum (class or WB group) and where its mask / infill come from."""

    image: Path
    label: int
    stratum: int
    mask: Path | None = None  # IN-9 no_fg twin (train) or fg_mask npy (test); WB segmentation PNG
    boxes: tuple[tuple[float, float, float, float], ...] = ()  # CCT, in JSON pixel coordinates
    json_size: tuple[int, int] = (0, 0)  # CCT (width, height) the boxes refer to
    infill: Path | None = None


def ratio_subset(items: list[Item], n: int) -> list[Item]:
    keep = torch.randperm(len(items), generator=torch.Generator().manual_seed(RATIO_SEED))[:n]
    return [items[i] for i in sorted(keep.tolist())]


# --- file listings --------------------------------------------------------------------------------------------


def _names(folder: Path) -> set[str]:
    """Names of the files in `folder`; empty when it does not exist."""
    return {e.name for e in os.scandir(folder) if e.is_file()} if folder.is_dir() else set()


def _present(base: Path, relpaths: Sequence[str]) -> list[bool]:
    """Whether base/relpath exists for each "/"-separated relpath (one listing per folder)."""
    folders = {str(PurePosixPath(r).parent) for r in relpaths}
    listings = {d: _names(base / d) for d in folders}
    return [PurePosixPath(r).name in listings[str(PurePosixPath(r).parent)] for r in relpaths]


def _require_dirs(source: Source, folders: Sequence[Path]) -> None:
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise source.error(f"{len(missing)} folder(s) missing: {', '.join(missing[:SHOW])}")


def _in9_folder(folder: Path) -> list[tuple[str, str, int]]:
    """(class folder, file name, label) of the images of folder/<class>/, sorted by name within each class."""
    _require_dirs(IN9, [folder])
    _require_dirs(IN9, [folder / c for c in CLASSES])
    empty = [str(folder / c) for c in CLASSES
             if not any(p.suffix.lower() in SUFFIXES for p in (folder / c).iterdir())]
    if empty:
        raise IN9.error(f"no {'/'.join(SUFFIXES)} images in {', '.join(empty[:SHOW])}")
    split = class_split(folder)
    return [(f.parent.name, f.name, int(y)) for f, y in zip(split.files, split.labels)]


def foreground_stem(name: str) -> str:
    """The original test image's stem: the 15 characters after "fg_" for mixed files (§3.1), else the stem."""
    return name[3:18] if name.startswith("fg_") else PurePosixPath(name).stem


# --- the three datasets -----------------------------------------------------------------------------------------


def in9_items(root: Path) -> tuple[list[Item], dict[str, list[Item]]]:
    base = root / "bg_challenge"
    train_dir, test_dir = base / "train", base / "test"
    listed = _in9_folder(train_dir / "original" / "train")
    rel = [f"{c}/{n}" for c, n, _ in listed]
    no_fg = _present(train_dir / "no_fg" / "train", rel)
    cagan = _present(train_dir / "original_bbox_cf_cagan" / "train", rel)
    train = [Item(train_dir / "original" / "train" / r, y, y,
                  mask=train_dir / "no_fg" / "train" / r if m else None,
                  infill=train_dir / "original_bbox_cf_cagan" / "train" / r if c else None)
             for r, (_, _, y), m, c in zip(rel, listed, no_fg, cagan)]
    evals = {"val": [Item(train_dir / "original" / "val" / c / n, y, y)
                     for c, n, y in _in9_folder(train_dir / "original" / "val")]}
    for variant in EVALS["in9"][1:]:
        files = _in9_folder(test_dir / variant / "val")
        npy = [f"{c}/{foreground_stem(n)}.npy" for c, n, _ in files]
        has = _present(test_dir / "fg_mask" / "val", npy)
        evals[variant] = [Item(test_dir / variant / "val" / c / n, y, y,
                               mask=test_dir / "fg_mask" / "val" / m if h else None)
                          for (c, n, y), m, h in zip(files, npy, has)]
    return train, evals


def extra_wanted(train_size: int, data_ratio: float) -> int | None:
    """How many IN-9L images data_ratio asks for beside `train_size` images: (ratio - 1) * |train| above 1, None
    (all of them) for -1, else 0 (Fig 5, §2.4)."""
    if data_ratio == -1:
        return None
    return int((data_ratio - 1) * train_size) if data_ratio > 1 else 0


def apply_ratio(root: Path, train: list[Item], data_ratio: float) -> tuple[list[Item], list[Item]]:
    """Fig 5 (§2.4) on the (possibly limited) training items: < 1 a RATIO_SEED subset, > 1 (or -1 = all) the
    `extra_wanted` extra unmasked IN-9L images, as many as there are."""
    if data_ratio > 1 or data_ratio == -1:
        train_dir = root / "bg_challenge" / "train"
        original = {name for _, name, _ in _in9_folder(train_dir / "original" / "train")}
        return train, _in9l_items(train_dir, original, extra_wanted(len(train), data_ratio))
    if data_ratio < 1:
        return ratio_subset(train, int(data_ratio * len(train))), []
    return train, []


def _in9l_items(train_dir: Path, original: set[str], n: int | None) -> list[Item]:
    """IN-9L train images not in IN-9 (basenames of original/train_filenames when present, else of original/train),
    a RATIO_SEED subset of size n (None: all)."""
    names_file = train_dir / "original" / "train_filenames"
    if names_file.is_file():
        original = {line.strip() for line in names_file.read_text().splitlines() if line.strip()}
    items = [Item(train_dir / "in9l" / "train" / c / name, y, y)
             for c, name, y in _in9_folder(train_dir / "in9l" / "train") if name not in original]
    return items if n is None else ratio_subset(items, min(n, len(items)))


def waterbirds_items(root: Path) -> tuple[list[Item], dict[str, list[Item]]]:
    base = root / "waterbird"
    folder = base / ORIGINAL_FOLDER
    path = folder / METADATA
    meta = WATERBIRDS.read_csv(path, ["img_filename", "y", "split", "place"], "img_filename")
    rel = meta["img_filename"].tolist()
    WATERBIRDS.unique(rel, "img_filename", path)
    split = WATERBIRDS.codes(meta, "split", {0: 0, 1: 1, 2: 2}, path)
    y = WATERBIRDS.codes(meta, "y", {0: 0, 1: 1}, path)
    place = WATERBIRDS.codes(meta, "place", {0: 0, 1: 1}, path)
    files = WATERBIRDS.existing_files(folder, rel, path)
    seg = [str(PurePosixPath(r).with_suffix(".png")) for r in rel]
    has_seg = _present(base / "segmentations", seg)
    has_cagan = _present(base / "cagan", rel)
    items = [Item(f, int(yi), int(2 * p + yi), mask=base / "segmentations" / s if hs else None,
                  infill=base / "cagan" / r if hc else None)
             for f, yi, p, r, s, hs, hc in zip(files, y, place, rel, seg, has_seg, has_cagan)]
    pick = {"train": split == 0, "val": split == 1, "original": (split == 2) & (y == place),
            "flip": (split == 2) & (y != place)}
    chosen = {k: [items[i] for i in np.flatnonzero(v)] for k, v in pick.items()}
    return chosen.pop("train"), chosen


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CCT.error(f"{path} is missing")
    try:
        data = json.loads(path.read_text())
        if not all(isinstance(data[k], list) for k in ("images", "annotations", "categories")):
            raise TypeError("images, annotations and categories must be lists")
        return data
    except (ValueError, KeyError, TypeError) as e:
        raise CCT.error(f"{path} is not a COCO-style annotation file ({type(e).__name__}: {e})") from e


def _cct_split(data: dict[str, Any], path: Path, labels: dict[int, int], images: Path, cagan: set[str]) \
        -> tuple[list[Item], dict[str, int]]:
    """One sample per (image_id, category_id) group in order of first appearance, empties removed (§3.3)."""
    try:
        sizes = {im["id"]: (int(im["width"]), int(im["height"])) for im in data["images"]}
        groups: dict[tuple[Any, int], list[dict[str, Any]]] = {}
        for ann in data["annotations"]:
            groups.setdefault((ann["image_id"], int(ann["category_id"])), []).append(ann)
    except (KeyError, TypeError, ValueError) as e:
        raise CCT.error(f"{path}: an image lacks id/width/height or an annotation image_id/category_id ({e})") from e
    kept = [(k, v) for k, v in groups.items() if k[1] != EMPTY_CATEGORY]
    bad = sorted({str(c) for (_, c), _ in kept if c not in labels} | {str(i) for (i, _), _ in kept if i not in sizes})
    if bad:
        raise CCT.error(f"{path}: annotations name unknown categories or images: {', '.join(bad[:SHOW])}")
    names = sorted({f"{i}.jpg" for (i, _), _ in kept})
    CCT.existing_files(images, names, path)
    items = []
    for (image_id, category), anns in kept:
        boxes = tuple(tuple(float(v) for v in a["bbox"]) for a in anns if a.get("bbox")) if anns[0].get("bbox") else ()
        items.append(Item(images / f"{image_id}.jpg", labels[category], labels[category], boxes=boxes,
                          json_size=sizes[image_id],
                          infill=images.parent / "cagan" / f"{image_id}.jpg" if f"{image_id}.jpg" in cagan else None))
    return items, {"groups": len(groups), "empty_removed": len(groups) - len(kept), "samples": len(items),
                   "images": len(names), "no_bbox": sum(not it.boxes for it in items)}


def cct_items(root: Path) -> tuple[list[Item], dict[str, list[Item]], dict[str, Any]]:
    base = root / "cct"
    notes, images = base / "eccv_18_annotation_files", base / "eccv_18_all_images_sm"
    _require_dirs(CCT, [notes, images])
    data = {k: _read_json(notes / f"{f}_annotations.json") for k, f in CCT_FILES.items()}
    try:
        ids = sorted({int(c["id"]) for c in data["train"]["categories"]} - {EMPTY_CATEGORY})
    except (KeyError, TypeError, ValueError) as e:
        raise CCT.error(f"{notes / 'train_annotations.json'}: categories need integer ids ({e})") from e
    labels = {c: k for k, c in enumerate(ids)}
    cagan = _names(base / "cagan")
    split = {k: _cct_split(d, notes / f"{CCT_FILES[k]}_annotations.json", labels, images, cagan)
             for k, d in data.items()}
    facts = {"categories": ids, "effective": {k: s[1] for k, s in split.items()}}
    items = {k: s[0] for k, s in split.items()}
    return items.pop("train"), items, facts
