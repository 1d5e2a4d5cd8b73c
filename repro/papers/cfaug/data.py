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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from repro.papers.cfaug.listings import (C16, DATASETS, EVALS, SOURCES, WATERBIRDS, Item, apply_ratio, cct_items,
                                  extra_wanted, in9_items, waterbirds_items)
from repro.papers.cfaug.transforms import EvalTransform, TrainTransform, mask_extent, resize_bbox
from repro.data.image_files import SHOW, Source
from repro.data.image_sets import DatasetError
from repro.data.in9 import CLASSES
from repro.data.rgb_image import open_rgb
from repro.data.waterbirds import GROUPS

# --- decoding -------------------------------------------------------------------------------------------------


def open_image(source: Source, path: Path) -> Image.Image:
    """The RGB image at `path`, or the source's DatasetError naming the file."""
    try:
        return open_rgb(path)
    except DatasetError as e:
        raise source.error(str(e)) from e


FG_MASK_RULES = ("code", "all_channel")  # C-26: how the IN-9 per-channel fg mask is reduced to one channel


def in9_fg_mask(original: Image.Image, no_fg: Image.Image) -> Tensor:
    """(H, W, 3) bool, per channel: the no_fg value is 0 and differs from the original (§3.1)."""
    o, n = np.asarray(original, dtype=np.uint8), np.asarray(no_fg, dtype=np.uint8)
    return torch.from_numpy((n == 0) & (n != o))


def in9_mask_and_box(qualifies: Tensor, rule: str = "code") -> tuple[Tensor, Tensor]:
    """The (H, W) bool fg mask of the per-channel `qualifies` and the crop bbox (§3.1 corrected, C-26).

    The bbox always takes pixels that qualify in every channel, and without one the image has no mask (both
    empty). The mask (CF rectangle, F keep region, Sal background) takes any qualifying channel under `code`,
    every channel under `all_channel`.
    """
    if rule not in FG_MASK_RULES:
        raise ValueError(f"IN-9 fg mask rule must be one of {FG_MASK_RULES}, not {rule!r}")
    every = qualifies.all(-1)
    box = mask_extent(every)
    if not len(box):
        return torch.zeros_like(every), box
    return (qualifies.any(-1) if rule == "code" else every), box


def _l_image(mask: Tensor) -> Image.Image:
    return Image.fromarray(mask.numpy().astype(np.uint8) * 255, "L")


def item_boxes(item: Item, image_size: tuple[int, int]) -> Tensor:
    """(K, 4) int64 CCT boxes of `item` rescaled from its JSON size to the actual image size (§3.3)."""
    if not item.boxes:
        return torch.zeros(0, 4, dtype=torch.int64)
    return resize_bbox(torch.tensor(item.boxes), item.json_size, image_size)


def _train_mask(kind: str, item: Item, image: Image.Image, source: Source, fg_mask: str
                ) -> tuple[Image.Image | None, Tensor]:
    """(mask image or None, boxes in image pixels) of a training item; `fg_mask` = the IN-9 rule (C-26)."""
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
        fg, box = in9_mask_and_box(in9_fg_mask(image, other), fg_mask)
        return (_l_image(fg), box) if len(box) else (None, none)
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
    """Training samples {x, y, mask, has_bbox[, cagan]}; mask kind "no_fg" (IN-9, reduced by the rule
    `fg_mask`, C-26), "segmentation" (WB), "boxes" (CCT) or "none"."""

    def __init__(self, items: Sequence[Item], kind: str, transform: TrainTransform, source: Source,
                 cagan: bool, fg_mask: str = "code") -> None:
        self.items, self.kind, self.transform, self.source, self.cagan = list(items), kind, transform, source, cagan
        self.fg_mask = fg_mask
        self.stream: int | None = None

    def set_stream(self, stream: int) -> None:
        """Key the per-item random draws on `stream` (e.g. run seed * 1000 + epoch) instead of torch's seed."""
        self.stream = stream

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = self.items[index]
        gen = item_generator(torch.initial_seed() if self.stream is None else self.stream, index)
        image = open_image(self.source, item.image)
        mask, boxes = _train_mask(self.kind, item, image, self.source, self.fg_mask)
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
               eval_masks: bool = False, data_ratio: float = 1.0, fg_mask: str = "code") -> CfaugData:
    """Index `dataset` ("in9", "waterbirds", "cct") under the data root `root` (§3.0) at final size `size`.

    cagan: train items carry "cagan" infills (C-16). limits: {"train" or an eval split: n} seeded (`seed`)
    class-stratified (WB: group-stratified) subsets of at most n. eval_masks: eval items carry "mask" for
    saliency. data_ratio (IN-9, Fig 5): < 1 keeps a RATIO_SEED subset of train; > 1 (or -1 = all) fills `extra`
    with (ratio - 1) * |train| unmasked IN-9L images. fg_mask: the IN-9 training mask rule (C-26, FG_MASK_RULES).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown cfaug dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if data_ratio != 1 and dataset != "in9":
        raise ValueError("data_ratio applies to in9 only")
    if fg_mask not in FG_MASK_RULES:
        raise ValueError(f"fg_mask must be one of {FG_MASK_RULES}, not {fg_mask!r}")
    root, limits = Path(root), dict(limits or {})
    unknown = set(limits) - {"train", *EVALS[dataset]}
    if unknown:
        raise ValueError(f"limits for unknown split(s) {sorted(unknown)}; {dataset} has train, "
                         f"{', '.join(EVALS[dataset])}")
    source, extra, facts = SOURCES[dataset], [], {}
    if dataset == "in9":
        full, evals = in9_items(root)
        num_classes, kind, eval_kind, aspect = len(CLASSES), "no_fg", "npy", "squash"
    elif dataset == "waterbirds":
        full, evals = waterbirds_items(root)
        num_classes, kind, eval_kind, aspect = 2, "segmentation", "segmentation", "squash"
    else:
        full, evals, facts = cct_items(root)
        num_classes, kind, eval_kind, aspect = len(facts["categories"]), "boxes", "boxes", "shorter"
    full_counts = {"train": len(full), **{k: len(v) for k, v in evals.items()}}
    train = _limit(full, limits.get("train"), seed)
    ratio_base = len(train)
    if dataset == "in9":
        train, extra = apply_ratio(root, train, data_ratio)
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
        details |= {"data_ratio": data_ratio, "ratio_base": ratio_base, "extra": len(extra),
                    "extra_wanted": extra_wanted(ratio_base, data_ratio), "fg_mask": fg_mask,
                    "mask_note": "train_with_mask counts no_fg twins; an all-background twin gives no mask"}
    ev = EvalTransform(size, preproc)
    return CfaugData(
        dataset, TrainSet(train, kind, transform, source, cagan, fg_mask),
        {k: EvalSet(v, eval_kind, ev, source, eval_masks) for k, v in evals.items()}, num_classes, details,
        TrainSet(extra, "none", transform, source, cagan) if extra else None)
