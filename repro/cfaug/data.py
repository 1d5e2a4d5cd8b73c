"""cfaug datasets read from their official on-disk layouts (specs/cfaug.md §3.0-3.3, §6.1, §9, §11, C-16).

`load_cfaug` indexes one dataset under a data root (bg_challenge/, waterbird/ or cct/) and returns torch Datasets
whose items follow the batch contract: train items {x, y, mask, has_bbox[, cagan]}, eval items {x, y[, mask]}.
Files are decoded lazily in `__getitem__`; every missing or undecodable file is a `DatasetError` (from
`Source.error`) naming the dataset, the path, the expected layout and where to get the data.

Train-time randomness: item i draws from a torch.Generator seeded from (stream, i). The stream is the one given
to `TrainSet.set_stream` (e.g. run seed * 1000 + epoch; then the draws do not depend on the worker count), else
torch.initial_seed() of the process, which the DataLoader sets per worker from its own generator (deterministic
for a fixed worker count).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from repro.cfaug.transforms import EvalTransform, TrainTransform, mask_extent, resize_bbox
from repro.data.image_files import SHOW, Source
from repro.data.image_sets import DatasetError
from repro.data.in9 import CLASSES, SUFFIXES, class_split
from repro.data.pil_transforms import open_rgb
from repro.data.waterbirds import GROUPS, METADATA, ORIGINAL_FOLDER

DATASETS = ("in9", "waterbirds", "cct")
EVALS = {"in9": ("val", "original", "mixed_same", "mixed_rand", "mixed_next"),
         "waterbirds": ("val", "original", "flip"),
         "cct": ("val", "cis_test", "trans_test")}
TRAIN_WORKERS, EVAL_BATCH = 4, 256  # §6.1: train loader shuffled, 4 workers, drop_last false; eval batch 256
RATIO_SEED = 2020  # the data_ratio subset permutation, independent of the run seed (§6.1)
EMPTY_CATEGORY = 30  # CCT "empty" (§3.3)
CCT_FILES = {"train": "train", "val": "cis_val", "cis_test": "cis_test", "trans_test": "trans_test"}
C16 = ("cagan=True needs the cfaug authors' precomputed CF(CAGAN) infills (spec C-16; their generator is not "
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


# --- decoding -------------------------------------------------------------------------------------------------


def open_image(source: Source, path: Path) -> Image.Image:
    """The RGB image at `path`, or the source's DatasetError naming the file."""
    try:
        return open_rgb(path)
    except DatasetError as e:
        raise source.error(str(e)) from e


def in9_fg_mask(original: Image.Image, no_fg: Image.Image) -> Tensor:
    """(H, W) bool: foreground where, in every channel, no_fg is 0 and differs from the original (§3.1)."""
    o, n = np.asarray(original, dtype=np.uint8), np.asarray(no_fg, dtype=np.uint8)
    return torch.from_numpy(((n == 0) & (n != o)).all(-1))


def _l_image(mask: Tensor) -> Image.Image:
    return Image.fromarray(mask.numpy().astype(np.uint8) * 255, "L")


def item_boxes(item: Item, image_size: tuple[int, int]) -> Tensor:
    """(K, 4) int64 CCT boxes of `item` rescaled from its JSON size to the actual image size (§3.3)."""
    if not item.boxes:
        return torch.zeros(0, 4, dtype=torch.int64)
    return resize_bbox(torch.tensor(item.boxes), item.json_size, image_size)


def _train_mask(kind: str, item: Item, image: Image.Image, source: Source) -> tuple[Image.Image | None, Tensor]:
    """(mask image or None, boxes in image pixels) of a training item."""
    none = torch.zeros(0, 4, dtype=torch.int64)
    if kind == "boxes":
        return None, item_boxes(item, image.size)
    if item.mask is None:
        return None, none
    other = open_image(source, item.mask)
    if kind == "no_fg":
        if other.size != image.size:
            raise source.error(f"{item.mask} is {other.size[0]}x{other.size[1]} but {item.image} is "
                               f"{image.size[0]}x{image.size[1]}; a no_fg image must match its original")
        fg = in9_fg_mask(image, other)
        return (_l_image(fg), mask_extent(fg)) if bool(fg.any()) else (None, none)
    seg = other.resize(image.size, Image.BILINEAR) if other.size != image.size else other  # CUB masks align
    return seg, mask_extent(torch.from_numpy((np.asarray(seg) > 0).all(-1)))


def _eval_mask(kind: str, item: Item, image: Image.Image, source: Source) -> tuple[Image.Image | None, Tensor | None]:
    """(mask image, boxes in image pixels) for saliency: IN-9 npy, WB segmentation, CCT boxes; (None, None) gives
    an all-zero mask."""
    if kind == "boxes":
        return None, item_boxes(item, image.size)
    if item.mask is None:
        return None, None
    if kind == "npy":
        try:
            array = np.load(item.mask)
        except (OSError, ValueError, EOFError) as e:
            raise source.error(f"cannot read the mask {item.mask}: {e}") from e
        return _l_image(torch.from_numpy(np.asarray(array) > 0)), None
    return open_image(source, item.mask), None


# --- datasets -------------------------------------------------------------------------------------------------


def item_generator(*keys: int) -> torch.Generator:
    """A torch.Generator seeded from the non-negative ints `keys` through numpy's SeedSequence."""
    state = np.random.SeedSequence(list(keys)).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


class _Items(Dataset):
    """A dataset over indexed `Item`s (`self.items`)."""

    items: list[Item]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> np.ndarray:
        return np.array([it.label for it in self.items], dtype=np.int64)


class TrainSet(_Items):
    """Training samples {x, y, mask, has_bbox[, cagan]}; mask kind "no_fg" (IN-9), "segmentation" (WB),
    "boxes" (CCT) or "none"."""

    def __init__(self, items: Sequence[Item], kind: str, transform: TrainTransform, source: Source,
                 cagan: bool) -> None:
        self.items, self.kind, self.transform, self.source, self.cagan = list(items), kind, transform, source, cagan
        self.stream: int | None = None

    def set_stream(self, stream: int) -> None:
        """Key the per-item random draws on `stream` (e.g. run seed * 1000 + epoch) instead of torch's seed."""
        self.stream = stream

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = self.items[index]
        gen = item_generator(torch.initial_seed() if self.stream is None else self.stream, index)
        image = open_image(self.source, item.image)
        mask, boxes = _train_mask(self.kind, item, image, self.source)
        infill = open_image(self.source, item.infill) if self.cagan and item.infill is not None else None
        out = self.transform(image, mask, infill, boxes, gen)
        sample = {"x": out.x, "y": torch.tensor(item.label, dtype=torch.int64), "mask": out.mask,
                  "has_bbox": out.mask.any()}
        if self.cagan:
            sample["cagan"] = out.infill if out.infill is not None else torch.zeros_like(out.x)
        return sample


class EvalSet(_Items):
    """Evaluation samples {x, y}, plus "mask" (1, S, S) when built with masks (all zeros where none exists)."""

    def __init__(self, items: Sequence[Item], kind: str, transform: EvalTransform, source: Source,
                 masks: bool) -> None:
        self.items, self.kind, self.transform, self.source, self.masks = list(items), kind, transform, source, masks

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = self.items[index]
        image = open_image(self.source, item.image)
        mask, boxes = _eval_mask(self.kind, item, image, self.source) if self.masks else (None, None)
        out = self.transform(image, mask, boxes)
        sample = {"x": out.x, "y": torch.tensor(item.label, dtype=torch.int64)}
        if self.masks:
            sample["mask"] = out.mask
        return sample


def collate(samples: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Stack per-sample dicts into the batch dict (x (B,3,S,S), y (B,), mask (B,1,S,S), has_bbox (B,), ...)."""
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


class SourceBatchSampler(Sampler[list[int]]):
    """Batches of a ConcatDataset of sources (IN-9 data_ratio > 1, §11): each batch comes from one source; each
    source is shuffled and cut into full batches, and the batches of all sources are interleaved at random.
    Epoch length: sum over sources of floor(size / batch_size)."""

    def __init__(self, sizes: Sequence[int], batch_size: int, seed: int) -> None:
        self.sizes, self.batch_size, self.seed, self.epoch = list(sizes), batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(n // self.batch_size for n in self.sizes)

    def __iter__(self) -> Iterator[list[int]]:
        gen = item_generator(self.seed, self.epoch)
        batches, offset = [], 0
        for n in self.sizes:
            order = (torch.randperm(n, generator=gen) + offset).tolist()
            batches += [order[k:k + self.batch_size] for k in range(0, n - self.batch_size + 1, self.batch_size)]
            offset += n
        for k in torch.randperm(len(batches), generator=gen).tolist():
            yield batches[k]


@dataclass
class CfaugData:
    """One dataset ready for training: `train`, `evals` (val first), `num_classes`, `details` (facts for
    provenance and `repro data check`); `extra` = the unmasked IN-9L images of data_ratio > 1 (else None)."""

    dataset: str
    train: TrainSet
    evals: dict[str, EvalSet]
    num_classes: int
    details: dict[str, Any] = field(default_factory=dict)
    extra: TrainSet | None = None


# --- subsets --------------------------------------------------------------------------------------------------


def stratified_subset(strata: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset of size min(n, len) whose stratum counts are proportional to the
    strata's sizes (largest remainder; ties to the lower stratum id)."""
    strata = np.asarray(strata, dtype=np.int64)
    if n >= len(strata):
        return np.arange(len(strata))
    ids, sizes = np.unique(strata, return_counts=True)
    quota = n * sizes / len(strata)
    take = np.floor(quota).astype(np.int64)
    extra = np.argsort(-(quota - take), kind="stable")[:n - int(take.sum())]
    take[extra] += 1
    gen = torch.Generator().manual_seed(seed)
    chosen = [np.flatnonzero(strata == s)[torch.randperm(int(size), generator=gen)[:k].numpy()]
              for s, size, k in zip(ids, sizes, take)]
    return np.sort(np.concatenate(chosen))


def _limit(items: list[Item], n: int | None, seed: int) -> list[Item]:
    if n is None:
        return items
    return [items[i] for i in stratified_subset(np.array([it.stratum for it in items]), n, seed)]


def _ratio_subset(items: list[Item], n: int) -> list[Item]:
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


def _in9_items(root: Path) -> tuple[list[Item], dict[str, list[Item]]]:
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


def _apply_ratio(root: Path, train: list[Item], data_ratio: float) -> tuple[list[Item], list[Item]]:
    """Fig 5 (§2.4) on the (possibly limited) training items: < 1 a RATIO_SEED subset, > 1 (or -1 = all) the
    (ratio - 1) * |train| extra unmasked IN-9L images."""
    if data_ratio > 1 or data_ratio == -1:
        train_dir = root / "bg_challenge" / "train"
        original = {name for _, name, _ in _in9_folder(train_dir / "original" / "train")}
        n = None if data_ratio == -1 else int((data_ratio - 1) * len(train))
        return train, _in9l_items(train_dir, original, n)
    if data_ratio < 1:
        return _ratio_subset(train, int(data_ratio * len(train))), []
    return train, []


def _in9l_items(train_dir: Path, original: set[str], n: int | None) -> list[Item]:
    """IN-9L train images not in IN-9 (basenames of original/train_filenames when present, else of original/train),
    a RATIO_SEED subset of size n (None: all)."""
    names_file = train_dir / "original" / "train_filenames"
    if names_file.is_file():
        original = {line.strip() for line in names_file.read_text().splitlines() if line.strip()}
    items = [Item(train_dir / "in9l" / "train" / c / name, y, y)
             for c, name, y in _in9_folder(train_dir / "in9l" / "train") if name not in original]
    return items if n is None else _ratio_subset(items, min(n, len(items)))


def _waterbirds_items(root: Path) -> tuple[list[Item], dict[str, list[Item]]]:
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


def _cct_items(root: Path) -> tuple[list[Item], dict[str, list[Item]], dict[str, Any]]:
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


# --- entry point ----------------------------------------------------------------------------------------------


def _cagan_check(dataset: str, train: list[Item], full: list[Item]) -> None:
    """C-16: WB needs an infill for every train image used; IN-9 / CCT need at least one (missing -> zeros)."""
    folder = {"in9": "bg_challenge/train/original_bbox_cf_cagan/train/<class>/<img>",
              "waterbirds": "waterbird/cagan/<img_filename>", "cct": "cct/cagan/<image_id>.jpg"}[dataset]
    if dataset == "waterbirds":
        missing = [str(it.image) for it in train if it.infill is None]
        if missing:
            raise WATERBIRDS.error(f"{C16}: {len(missing)} of the {len(train)} training images have no infill at "
                                   f"{folder}, e.g. for {', '.join(missing[:SHOW])}")
    elif not any(it.infill is not None for it in full):
        raise SOURCES[dataset].error(f"{C16}: none of the {len(full)} training images has an infill at {folder}")


def _counts(items: Sequence[Item], num_classes: int) -> list[int]:
    return np.bincount([it.label for it in items], minlength=num_classes).tolist()


def load_cfaug(dataset: str, root: Path | str, *, size: int = 224, cagan: bool = False,
               limits: dict[str, int] | None = None, seed: int = 0, preproc: str = "code",
               eval_masks: bool = False, data_ratio: float = 1.0) -> CfaugData:
    """Index `dataset` ("in9", "waterbirds", "cct") under the data root `root` (§3.0) at final size `size`.

    cagan: train items carry "cagan" infills (C-16). limits: {"train" or an eval split: n} seeded (`seed`)
    class-stratified (WB: group-stratified) subsets of at most n. eval_masks: eval items carry "mask" for
    saliency. data_ratio (IN-9, Fig 5): < 1 keeps a RATIO_SEED subset of train; > 1 (or -1 = all) fills `extra`
    with (ratio - 1) * |train| unmasked IN-9L images.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown cfaug dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if data_ratio != 1 and dataset != "in9":
        raise ValueError("data_ratio applies to in9 only")
    root, limits = Path(root), dict(limits or {})
    unknown = set(limits) - {"train", *EVALS[dataset]}
    if unknown:
        raise ValueError(f"limits for unknown split(s) {sorted(unknown)}; {dataset} has train, "
                         f"{', '.join(EVALS[dataset])}")
    source, extra, facts = SOURCES[dataset], [], {}
    if dataset == "in9":
        full, evals = _in9_items(root)
        num_classes, kind, eval_kind, aspect = len(CLASSES), "no_fg", "npy", "squash"
    elif dataset == "waterbirds":
        full, evals = _waterbirds_items(root)
        num_classes, kind, eval_kind, aspect = 2, "segmentation", "segmentation", "squash"
    else:
        full, evals, facts = _cct_items(root)
        num_classes, kind, eval_kind, aspect = len(facts["categories"]), "boxes", "boxes", "shorter"
    full_counts = {"train": len(full), **{k: len(v) for k, v in evals.items()}}
    train = _limit(full, limits.get("train"), seed)
    if dataset == "in9":
        train, extra = _apply_ratio(root, train, data_ratio)
    evals = {k: _limit(v, limits.get(k), seed) for k, v in evals.items()}
    if dataset == "waterbirds":
        no_seg = [str(it.image) for it in train if it.mask is None]
        if no_seg:
            raise WATERBIRDS.error(f"{len(no_seg)} training image(s) have no segmentation under "
                                   f"{root / 'waterbird' / 'segmentations'}, e.g. for {', '.join(no_seg[:SHOW])}")
    if cagan:
        _cagan_check(dataset, train, full)
    transform = TrainTransform(size, aspect, preproc)
    all_sets = {"train": train, **evals}
    details: dict[str, Any] = {
        "dataset": dataset, "root": str(root), "size": size, "preproc": preproc, "cagan": cagan, "limits": limits,
        "limit_seed": seed, "full_counts": full_counts, "counts": {k: len(v) for k, v in all_sets.items()},
        "class_counts": {k: _counts(v, num_classes) for k, v in all_sets.items()},
        "train_with_mask": sum(bool(it.mask or it.boxes) for it in train),
        "train_with_cagan": sum(it.infill is not None for it in train)}
    if dataset == "waterbirds":
        details["group_counts"] = {k: dict(zip(GROUPS, np.bincount([it.stratum for it in v], minlength=4).tolist()))
                                   for k, v in all_sets.items()}
    if dataset == "cct":
        details |= {"categories": facts["categories"], "effective_sizes": facts["effective"]}
    if dataset == "in9":
        details |= {"data_ratio": data_ratio, "extra": len(extra),
                    "mask_note": "train_with_mask counts no_fg twins; an all-background twin gives no mask"}
    ev = EvalTransform(size, preproc)
    return CfaugData(
        dataset, TrainSet(train, kind, transform, source, cagan),
        {k: EvalSet(v, eval_kind, ev, source, eval_masks) for k, v in evals.items()}, num_classes, details,
        TrainSet(extra, "none", transform, source, cagan) if extra else None)
