"""X-ray emphysema data of the actdiff paper: NIH ChestX-ray14 (site 0) + PadChest (site 1) (actdiff spec §7).

`prepare_xray` reads the two CSVs and the pre-resized 128x128 PNGs under a data root

    NIH/{Data_Entry_2017.csv, images-128/<Image Index>}
    PadChest/{PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv, images-128/<ImageID>}

(the ids carry their `.png`), builds the site-pathology-correlated split of §7.3 and writes `xray.npz` (float32
images (N, 1, 128, 128) normalised to [-1024, 1024], int64 labels and sites per split) and `source.json`.
`build_xray` (registered as "xray") turns that folder into training tensors with the fixed disc ROI of §7.4.

Split semantics (§7.3): the pools are arrays of image ids in CSV order; every draw is a legacy numpy
`choice(..., replace=False)` from one `RandomState(1234)` stream (the code's global seed, reseeded before the
draws), first n per pool, then train, then valid, each in the pool order NIH-, NIH+, PC-, PC+; `setdiff1d`
remainders are sorted by id. `write_fixtures` writes a small synthetic data root in the official layout.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from repro.data.catalog import dataset
from repro.data.image_files import Source
from repro.data.image_mode import deep_grey, to_8bit
from repro.data.image_sets import DatasetError
from repro.data.registry import TrainData, register_dataset
from repro.runs.prepared import check_fingerprint, json_fingerprint, write_npz, write_record

log = logging.getLogger(__name__)

SIZE = 128
SPLIT_SEED = 1234  # the configs' fixed dataset seed (A-4)
PAPER_N = 500  # per-pool size; the only n giving the paper's 998/498/504 (§7.3, A-19)
LIMIT_SEED = 0  # reduced profiles: the same subset for every run
SPLITS = ("train", "valid", "test")
SITES = ("NIH", "PadChest")
POOLS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (site, label): NIH-, NIH+, PC-, PC+ (the draw and item order)
NIH_CSV = "Data_Entry_2017.csv"
PC_CSV = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"
IMAGES = "images-128"
NPZ, SOURCE_JSON = "xray.npz", "source.json"
DISC_CENTRE, DISC_RADIUS = 64.0, 51.2

NIH, PADCHEST = (Source(name, f"<data root>/{spec.layout}", spec.obtain)
                 for name, spec in (("NIH ChestX-ray14", dataset("nih_cxr14")), ("PadChest", dataset("padchest"))))
SOURCES = {0: (NIH, "NIH"), 1: (PADCHEST, "PadChest")}

Pools = dict[tuple[int, int], list[str]]
Item = tuple[int, int, str]  # (site, label, image id)


# ---------------------------------------------------------------- cohorts (§7.2)


def _labels(text: pd.Series, positive: str, negative: str) -> pd.Series:
    """1 where `text` contains `positive`, else 0 where it contains `negative`, else -1 (dropped)."""
    text = text.fillna("").astype(str)
    pos, neg = text.str.contains(positive, regex=False), text.str.contains(negative, regex=False)
    return pd.Series(np.where(pos, 1, np.where(neg, 0, -1)), index=text.index)


def cohorts(data_root: Path) -> Pools:
    """(site, label) -> image ids in CSV order. NIH (all views): 1 if Finding Labels contains "Emphysema",
    else 0 if "No Finding"; PadChest (ViewPosition_DICOM contains "POSTEROANTERIOR"): 1 if Labels contains
    'emphysema', else 0 if 'normal'. Other rows are dropped."""
    root = Path(data_root)
    nih_csv, pc_csv = root / "NIH" / NIH_CSV, root / "PadChest" / PC_CSV
    nih = NIH.read_csv(nih_csv, ("Image Index", "Finding Labels"), "Image Index")
    pc = PADCHEST.read_csv(pc_csv, ("ImageID", "Labels", "ViewPosition_DICOM"), "ImageID")
    pc = pc[pc["ViewPosition_DICOM"].fillna("").astype(str).str.contains("POSTEROANTERIOR", regex=False)]
    frames = {0: (nih["Image Index"], _labels(nih["Finding Labels"], "Emphysema", "No Finding")),
              1: (pc["ImageID"], _labels(pc["Labels"], "emphysema", "normal"))}
    return {(site, label): ids[labels == label].tolist() for site, label in POOLS
            for ids, labels in [frames[site]]}


# ---------------------------------------------------------------- split (§7.3)


def pool_size(pools: Pools, cap: int = PAPER_N) -> int:
    """n = min(cap, smallest positive pool) (A-19: the paper's sizes need n = 500)."""
    return min(cap, len(pools[(0, 1)]), len(pools[(1, 1)]))


def split_counts(n: int, ratio: float) -> dict[str, tuple[int, ...]]:
    """Per-pool counts (NIH-, NIH+, PC-, PC+) per split, with the code's float truncation
    (n=500, r=0.9: 450/49/49/450, 24/225/225/24, 26/226/226/26)."""
    r, q = ratio, 1 - ratio
    train = (int(n * r * 0.5 * 2), int(n * q * 0.5 * 2), int(n * q * 0.5 * 2), int(n * r * 0.5 * 2))
    valid = (int(n * q * 0.5), int(n * r * 0.5), int(n * r * 0.5), int(n * q * 0.5))
    return {"train": train, "valid": valid, "test": tuple(n - a - b for a, b in zip(train, valid))}


def split(pools: Pools, ratio: float, seed: int = SPLIT_SEED, n: int = PAPER_N) -> dict[str, list[Item]]:
    """train/valid/test lists of (site, label, id), items in the pool order NIH-, NIH+, PC-, PC+; n per pool."""
    small = [f"{SITES[s]} label {lab}: {len(pools[(s, lab)])}" for s, lab in POOLS if len(pools[(s, lab)]) < n]
    if small:
        raise DatasetError(f"X-ray split: every (site, label) pool needs at least n={n} images; " + ", ".join(small))
    rng = np.random.RandomState(seed)
    left = [rng.choice(np.array(pools[key], dtype=str), n, replace=False) for key in POOLS]
    counts = split_counts(n, ratio)
    chosen: dict[str, list[np.ndarray]] = {}
    for name in ("train", "valid"):
        chosen[name] = [rng.choice(pool, k, replace=False) for pool, k in zip(left, counts[name])]
        left = [np.setdiff1d(pool, take) for pool, take in zip(left, chosen[name])]
    chosen["test"] = left
    return {name: [(s, lab, str(i)) for (s, lab), ids in zip(POOLS, chosen[name]) for i in ids] for name in SPLITS}


def split_fingerprint(splits: dict[str, list[Item]], ratio: float) -> str:
    """sha256 of the ratio and the selected (site, label, id) items per split."""
    return json_fingerprint({"ratio": ratio, "splits": {k: [list(item) for item in splits[k]] for k in SPLITS}})


# ---------------------------------------------------------------- images (§7.1, §7.2)


def read_image(path: Path, source: Source) -> tuple[np.ndarray, float]:
    """A 128x128 PNG as float32 (128, 128) in [-1024, 1024], (2x/maxval - 1)*1024, and that maxval: grey deeper
    than 8 bits (16-bit PadChest) at its own depth, maxval its white level (`deep_grey`, 65535); any other
    image as 8-bit RGB (`to_8bit`), channel 0, maxval 255."""
    try:
        with Image.open(path) as image:
            x, maxval = deep_grey(image) or (np.asarray(to_8bit(image, "RGB"))[..., 0], 255)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise source.error(f"{path} is not a readable image ({e})") from e
    if x.shape != (SIZE, SIZE):
        raise source.error(f"{path} is {x.shape[1]}x{x.shape[0]}, not {SIZE}x{SIZE}: pre-resize every image "
                           f"to {SIZE}x{SIZE} offline (bilinear, keeping the bit depth)")
    return ((2 * x.astype(np.float64) / maxval - 1) * 1024).astype(np.float32), maxval


def _load(items: list[Item], root: Path, maxvals: dict[str, set[float]]) -> np.ndarray:
    """The items' images (N, 1, 128, 128); adds each site's maxvals seen to `maxvals`."""
    files = {site: src.existing_files(root / folder / IMAGES, [i for s, _, i in items if s == site],
                                      root / folder / (NIH_CSV if site == 0 else PC_CSV))
             for site, (src, folder) in SOURCES.items()}
    out, cursor = np.empty((len(items), 1, SIZE, SIZE), np.float32), {0: iter(files[0]), 1: iter(files[1])}
    for k, (site, _, _) in enumerate(items):
        out[k, 0], maxval = read_image(next(cursor[site]), SOURCES[site][0])
        maxvals[SITES[site]].add(maxval)
    return out


# ---------------------------------------------------------------- prepare


def prepare_xray(data_root: Path, out_dir: Path, ratio: float, cap: int = PAPER_N) -> dict:
    """Write `<out_dir>/xray.npz` and `source.json` for the split at `ratio` (0.9: SPC 90%, 0.5: balanced);
    returns the source.json record."""
    data_root, out_dir = Path(data_root), Path(out_dir)
    pools = cohorts(data_root)
    n = pool_size(pools, cap)
    splits = split(pools, ratio, n=n)
    maxvals: dict[str, set[float]] = {s: set() for s in SITES}
    arrays: dict[str, np.ndarray] = {}
    for name, items in splits.items():
        arrays[f"{name}_images"] = _load(items, data_root, maxvals)
        arrays[f"{name}_labels"] = np.array([lab for _, lab, _ in items], np.int64)
        arrays[f"{name}_site"] = np.array([s for s, _, _ in items], np.int64)
    note = (f"n = {n} per (site, label) pool" + ("" if n == PAPER_N else
            f" < {PAPER_N}: the paper's split sizes (998/498/504 at ratio 0.9) need n = {PAPER_N} (A-19)"))
    if n != PAPER_N:
        log.warning("X-ray: %s", note)
    meta = {"dataset": "xray", "data_root": str(data_root), "ratio": ratio, "split_seed": SPLIT_SEED, "n": n,
            "note": note, "pool_sizes": {f"{SITES[s]}/{lab}": len(pools[(s, lab)]) for s, lab in POOLS},
            "counts": {name: {f"{SITES[s]}/{lab}": sum(1 for t in items if t[:2] == (s, lab)) for s, lab in POOLS}
                       for name, items in splits.items()},
            "sizes": {name: len(items) for name, items in splits.items()},
            "maxvals": {site: sorted(v) for site, v in maxvals.items()},
            "fingerprint": split_fingerprint(splits, ratio)}
    write_npz(out_dir / NPZ, arrays)
    write_record(out_dir, meta, SOURCE_JSON)
    return meta


# ---------------------------------------------------------------- training tensors (§7.4)


def disc_mask(size: int = SIZE) -> torch.Tensor:
    """float32 (1, size, size): 1 where ((r-64)/51.2)² + ((c-64)/51.2)² < 1 (8245 px at 128)."""
    r = (torch.arange(size, dtype=torch.float64) - DISC_CENTRE) / DISC_RADIUS
    return ((r[:, None] ** 2 + r[None, :] ** 2) < 1).to(torch.float32)[None]


def balanced_subset(y: np.ndarray, limit: int, seed: int = LIMIT_SEED) -> np.ndarray:
    """Sorted indices of a seeded subset with at most limit // 2 items per class (all when len(y) <= limit)."""
    if len(y) <= limit:
        return np.arange(len(y))
    rng = np.random.RandomState(seed)
    keep = [rng.choice(idx, min(limit // 2, len(idx)), replace=False) for c in (0, 1)
            for idx in [np.flatnonzero(y == c)]]
    return np.sort(np.concatenate(keep))


def _missing(prepared: Path, path: Path) -> DatasetError:
    return DatasetError(f"prepared X-ray data incomplete: {path} is missing (folder {prepared}). Prepare it from "
                        f"the raw files with `repro data prepare actdiff --data-root DIR` (DIR holding NIH/ and "
                        f"PadChest/: {NIH.layout}; {PADCHEST.layout})")


@register_dataset("xray", member_options=("masked_splits",))  # Fig. 5b's Masked row: zero outside the disc
def build_xray(seed: int, device: torch.device, prepared: Path, masked_splits: tuple[str, ...] = (),
               fingerprint: str = "", limit: int | None = None) -> TrainData:
    """Training tensors of the prepared split: the disc ROI mask for every image; `x *= mask` in the
    `masked_splits` (A-8: the paper masks "train", "valid" and "test"); evals train/valid/test, "train" being
    the training set as evaluated; no augmentation. `limit` keeps a seeded class-balanced subset of each split.
    `fingerprint`, when given, must match the prepared split's. The run seed does not change the data (A-4)."""
    del seed
    prepared = Path(prepared)
    unknown = set(masked_splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"masked_splits: unknown split(s) {sorted(unknown)}; choose from {SPLITS}")
    for path in (prepared / NPZ, prepared / SOURCE_JSON):
        if not path.is_file():
            raise _missing(prepared, path)
    meta = json.loads((prepared / SOURCE_JSON).read_text())
    check_fingerprint(prepared, meta, fingerprint, "prepared X-ray data", "run `repro data prepare actdiff` again")
    npz, disc = np.load(prepared / NPZ), disc_mask()
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name in SPLITS:
        x, y = npz[f"{name}_images"], npz[f"{name}_labels"]
        keep = balanced_subset(y, limit) if limit else np.arange(len(y))
        xt = torch.from_numpy(np.ascontiguousarray(x[keep]))
        tensors[name] = ((xt * disc if name in masked_splits else xt).to(device), torch.from_numpy(y[keep]).to(device))
    x, y = tensors["train"]
    mask = disc.to(device).expand(len(y), 1, SIZE, SIZE).contiguous()
    return TrainData(x, mask, y, tensors)


# ---------------------------------------------------------------- synthetic fixtures (tests, smoke profile)


def _fixture_png(path: Path, rng: np.random.RandomState, label: int, bits: int) -> None:
    """A 128x128 grey PNG (8-bit "L" or 16-bit "I;16"), brighter in the disc for label 1."""
    top = 255 if bits == 8 else 65535
    x = rng.uniform(0.2, 0.6, (SIZE, SIZE)) + 0.3 * label * disc_mask()[0].numpy()
    image = (x.clip(0, 1) * top).astype(np.uint8 if bits == 8 else np.uint16)
    Image.fromarray(image).save(path)


def write_fixtures(root: Path, per_pool: int = 12, seed: int = 0) -> Path:
    """Write a small deterministic data root in the official layout: per_pool images in each of the four
    (site, label) pools plus rows every cohort rule drops (other findings, non-PA / NaN views); NIH 8-bit,
    PadChest 16-bit PNGs; ids in CSV order are not sorted. Returns `root`."""
    root, rng = Path(root), np.random.RandomState(seed)
    nih_dir, pc_dir = root / "NIH" / IMAGES, root / "PadChest" / IMAGES
    nih_dir.mkdir(parents=True, exist_ok=True)
    pc_dir.mkdir(parents=True, exist_ok=True)
    nih_findings = (["No Finding"] * per_pool + ["Emphysema", "Emphysema|Infiltration"] * (per_pool // 2)
                    + ["Emphysema"] * (per_pool % 2) + ["Atelectasis", "Effusion|Mass"])
    nih = pd.DataFrame({"Image Index": [f"{k:08d}_000.png" for k in rng.permutation(len(nih_findings))],
                        "Finding Labels": nih_findings,
                        "View Position": np.where(np.arange(len(nih_findings)) % 3 == 0, "AP", "PA")})
    pos = ["['emphysema']"] * (per_pool - 1) + ["['subcutaneous emphysema']"]
    labels = ["['normal']"] * per_pool + pos + ["['pneumonia']", "['normal']", "['emphysema']", "['normal']"]
    views = (["['POSTEROANTERIOR']"] * (2 * per_pool + 1) + ["['ANTEROPOSTERIOR']", "['LATERAL']", np.nan])
    pc = pd.DataFrame({"ImageID": [f"{rng.randint(16 ** 8):08x}_{k:03d}.png" for k in range(len(labels))],
                       "Labels": labels, "ViewPosition_DICOM": views})
    nih.to_csv(root / "NIH" / NIH_CSV, index=False)
    pc.to_csv(root / "PadChest" / PC_CSV, index=False)
    for ids, text, folder, bits in ((nih["Image Index"], nih["Finding Labels"], nih_dir, 8),
                                    (pc["ImageID"], pc["Labels"], pc_dir, 16)):
        for name, t in zip(ids, text):
            _fixture_png(folder / name, rng, int("mphysema" in t), bits)
    return root
