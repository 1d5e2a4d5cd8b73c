"""The actdiff synthetic "count the crosses" data (synth2), generated (actdiff spec §5).

Three independent pools of 512 binary 28x28 images (distractor1/2/3 -> train/valid/test): indices
below 256 hold one cross (class 1), the others two crosses of a shared arm length (class 0). A 2x3
distractor box sits bottom-left for class 1 and bottom-right for class 0; valid and test are flipped
horizontally at load time, which inverts the box. The ROI mask is the crosses dilated by a square of
radius int(4*blur + 0.5) (Gaussian -> > 0 in the code, identical for binary masks, A-15).
Runs read the authors' files instead where their data settings name them (`data_synth2_files`, switch A-20).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from repro.data.registry import TrainData, register_dataset

SIZE = 28
POOL = 512
POOLS = ("distractor1", "distractor2", "distractor3")  # train, valid, test
BOX_ROWS = slice(23, 25)
BOX_COLS = {1: slice(3, 6), 0: slice(22, 25)}
GENERATOR_VERSION = "synth2-v3"


def class_of(index: int, pool_size: int = POOL) -> int:
    """Label rule of the synth2 files: the first half are class 1 (one cross)."""
    return 1 if index < pool_size // 2 else 0


@functools.lru_cache(maxsize=1)
def generate_pools(pool_size: int = POOL) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """The three pools: images, crosses-only segmentations (float32 [N,28,28] in {0,1}) and labels.

    Images are drawn independently per spec §5.2, with repetition as the authors' pools were: identical
    images may occur within a pool and across pools (rejecting repeats would change the distribution).
    """
    rng = np.random.default_rng(20191001)
    labels = np.array([class_of(i, pool_size) for i in range(pool_size)], np.int64)
    pools = []
    for _ in POOLS:
        seg = np.stack([draw_crosses(rng, 1 if label == 1 else 2) for label in labels])
        img = seg.copy()
        for label, cols in BOX_COLS.items():
            img[labels == label, BOX_ROWS, cols] = 1
        pools.append((img, seg, labels.copy()))
    return tuple(pools)


def draw_crosses(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` plus signs sharing one arm length a in {1, 2}, centres in [a, 27-a]^2 drawn per axis without
    replacement: two crosses never share a row or a column (spec §5.2)."""
    seg = np.zeros((SIZE, SIZE), np.float32)
    arm = int(rng.integers(1, 3))
    rows = rng.choice(np.arange(arm, SIZE - arm), count, replace=False)
    cols = rng.choice(np.arange(arm, SIZE - arm), count, replace=False)
    for cy, cx in zip(rows, cols):
        seg[cy, cx - arm: cx + arm + 1] = 1
        seg[cy - arm: cy + arm + 1, cx] = 1
    return seg


Pool = tuple[np.ndarray, np.ndarray, np.ndarray]


def generate_pool(pool: int) -> Pool:
    """Copies of one pool (0, 1, 2 = distractor1/2/3)."""
    return tuple(a.copy() for a in generate_pools()[pool])


def file_pool(pools: dict[str, np.ndarray], pool: int) -> Pool:
    """One pool of the authors' files (`data_synth2_files.load_pools`): images, segmentations, labels by index."""
    img, seg = pools[f"{POOLS[pool]}_img"], pools[f"{POOLS[pool]}_seg"]
    return img, seg, np.array([class_of(i, len(img)) for i in range(len(img))], np.int64)


def dilate(seg: torch.Tensor, blur: float) -> torch.Tensor:
    """Square (Chebyshev) dilation of radius int(4*blur + 0.5), i.e. Gaussian(blur) followed by > 0, of a binary
    (N, 1, H, W) mask: a row then a column max filter (separable, so large radii stay cheap)."""
    r = int(4 * blur + 0.5)
    if r == 0:
        return (seg > 0).float()
    rows = F.max_pool2d(seg, kernel_size=(1, 2 * r + 1), stride=1, padding=(0, r))
    return F.max_pool2d(rows, kernel_size=(2 * r + 1, 1), stride=1, padding=(r, 0))


def select(labels: np.ndarray, n: int, rs: np.random.RandomState) -> np.ndarray:
    """The loader's subset: n/2 files of class 0 then n/2 of class 1 (ascending index order, A-10),
    drawn without replacement from one legacy RNG; items ordered class 1 first."""
    idx0 = rs.choice(np.flatnonzero(labels == 0), n // 2, replace=False)
    idx1 = rs.choice(np.flatnonzero(labels == 1), n // 2, replace=False)
    return np.concatenate([idx1, idx0])


def drop_masks(n: int, maxmasks: float, rs: np.random.RandomState) -> np.ndarray:
    """Positions whose mask is replaced by all-ones: round(n/2*(1-p)) per class half (class-1 half first)."""
    half = n // 2
    k = int(round(half * (1 - maxmasks)))
    first = rs.choice(half, k, replace=False)
    second = half + rs.choice(half, k, replace=False)
    return np.concatenate([first, second]).astype(np.int64)


SPLITS = {"train": 0, "valid": 1, "test": 2}  # -> pool distractor1/2/3


def load_split(split: str, n: int, blur: float = 0.5, split_rng_seed: int = 0,
               maxmasks: float = 1.0, files: dict[str, np.ndarray] | None = None) -> dict[str, torch.Tensor]:
    """One split as the loader delivers it: `img`, `seg`, `mask` (float [n,1,28,28]) and `label`, from the
    generator or, given, the authors' `files`.

    Valid and test are always flipped horizontally (distract_noise = 1), which inverts the box;
    `maxmasks` < 1 replaces some train masks by all-ones (Appendix A).
    """
    img, seg, labels = file_pool(files, SPLITS[split]) if files is not None else generate_pool(SPLITS[split])
    rs = np.random.RandomState(split_rng_seed)
    idx = select(labels, n, rs)
    x = torch.from_numpy(img[idx]).unsqueeze(1)
    s = torch.from_numpy(seg[idx]).unsqueeze(1)
    m = dilate(s, blur)
    if split == "train" and maxmasks < 1:
        m[torch.from_numpy(drop_masks(n, maxmasks, rs))] = 1.0
    if split != "train":
        x, s, m = x.flip(-1), s.flip(-1), m.flip(-1)
    return {"img": x, "seg": s, "mask": m, "label": torch.from_numpy(labels[idx])}


@register_dataset("synthetic", member_options=("mask_train_inputs",))  # Classify Masked: images times masks
def build_synthetic(seed: int, device: torch.device, n_train: int = 500, n_valid: int = 128,
                    n_test: int = 128, blur: float = 0.5, split_seed: str = "fixed",
                    maxmasks: float = 1.0, mask_train_inputs: bool = False,
                    generator: str = GENERATOR_VERSION, source: str = "generator", prepared: Path | None = None,
                    fingerprint: str = "") -> TrainData:
    """Train/valid/test/test_clean tensors. `split_seed="fixed"` draws the subsets with seed 0 as the
    code does (A-4); `"run_seed"` uses the run seed (the paper's independent splits). `source="files"`: the
    authors' files packed in `prepared`, checked against `fingerprint` (A-20)."""
    if generator != GENERATOR_VERSION:
        raise ValueError(f"unknown synthetic generator {generator!r}; this version makes {GENERATOR_VERSION}")
    files = None
    if source == "files":
        from repro.papers.actdiff.data_synth2_files import load_pools

        files = load_pools(prepared, fingerprint)
    rng_seed = 0 if split_seed == "fixed" else seed
    train = load_split("train", n_train, blur, rng_seed, maxmasks, files)
    valid = load_split("valid", n_valid, blur, rng_seed, files=files)
    test = load_split("test", n_test, blur, rng_seed, files=files)
    x = train["img"] * train["mask"] if mask_train_inputs else train["img"]  # Classify Masked: train only
    evals = {
        "train": (x, train["label"]),
        "valid": (valid["img"], valid["label"]),
        "test": (test["img"], test["label"]),
        "test_clean": (test["seg"], test["label"]),  # distractor removed, img := seg
    }
    return TrainData(x.to(device), train["mask"].to(device), train["label"].to(device),
                     {k: (a.to(device), b.to(device)) for k, (a, b) in evals.items()})
