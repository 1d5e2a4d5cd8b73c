"""Training masks for the TAP-paper penalties (1 = the region to penalise), by annotation source (tap spec
§4.1, §5): the ground-truth tag boxes ("gt"), a teacher's saliency ("teacher") and random masks ("random").

A source is `fn(gt, seed=..., runs_dir=..., **args) -> (N, 1, H, W) bool`, where `gt` is the (N, 1, H, W)
ground-truth box mask of the training rows, in the same order."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from repro.papers.tap.teacher_saliency import percentile_mask, random_saliency

MaskSource = Callable[..., Tensor]
SOURCES: dict[str, MaskSource] = {}


def register_mask_source(name: str) -> Callable[[MaskSource], MaskSource]:
    def deco(fn: MaskSource) -> MaskSource:
        SOURCES[name] = fn
        return fn

    return deco


@register_mask_source("gt")
def ground_truth(gt: Tensor, **_: Any) -> Tensor:
    """The tag boxes themselves: get_mask of 1 - box at tau = 0.01 is exactly the box (§4.1)."""
    return gt.bool()


CHUNK = 256  # images per get_mask call: bounds the float32 copies of a large saliency file


@register_mask_source("teacher")
def teacher(gt: Tensor, runs_dir: Path, saliency: str, tau: float, tau_mode: str = "percentile",
            **_: Any) -> Tensor:
    """get_mask of a teacher's saliency at `tau` (§5.3): `saliency` is a float16 (N, h, w) .npy file under
    the runs dir, precomputed once per teacher on these training rows in this order, at the resolution the
    teacher and the students train at (repro.papers.tap.teachers). The mask is taken at that resolution and
    upsampled to the boxes' resolution so that the loader's max-pool back to it restores it exactly."""
    path = Path(runs_dir) / saliency
    if not path.exists():
        raise FileNotFoundError(
            f"teacher saliency {path} is missing: it is computed when the teacher run is done, by planning the "
            "TAP figure that uses it again (`repro tap figure9` or `figure8` with the same --runs-dir and profile).")
    s = np.load(path, mmap_mode="r")
    if s.ndim != 3 or len(s) != len(gt):
        raise ValueError(f"teacher saliency {path} has shape {s.shape}, expected ({len(gt)}, H, W) for the "
                         f"{len(gt)} training rows; delete it so that it is recomputed for this training set.")
    parts = [upsample_mask(percentile_mask(torch.from_numpy(np.array(s[i:i + CHUNK])), tau, tau_mode), gt)
             for i in range(0, len(s), CHUNK)]
    return torch.cat(parts).to(gt.device)


@register_mask_source("random")
def random_mask(gt: Tensor, seed: int, tau: float, channels: int = 3, size: int | None = None,
                **_: Any) -> Tensor:
    """"rnd" (§5.5): get_mask of E ~ N(0, 1) with the input's channels, at the training resolution `size`
    (default: the boxes'), drawn from a CPU generator seeded with the run seed; per image a random
    tau-fraction of the pixels."""
    gen = torch.Generator().manual_seed(seed)
    n, _, h, w = gt.shape
    h, w = (size, size) if size else (h, w)
    parts = [upsample_mask(percentile_mask(random_saliency((min(CHUNK, n - i), channels, h, w), gen).abs().sum(1),
                                           tau), gt) for i in range(0, n, CHUNK)]
    return torch.cat(parts).to(gt.device) if parts else torch.zeros_like(gt, dtype=torch.bool)


def _containing(big: int, small: int) -> tuple[Tensor, Tensor]:
    """For each of `big` positions, the first and last of the `small` adaptive-pooling windows containing it."""
    i = torch.arange(small)
    starts, ends = (i * big) // small, -((-(i + 1) * big) // small)  # floor, ceil
    r = torch.arange(big)[:, None]
    inside = (starts <= r) & (r < ends)
    return inside.int().argmax(1), small - 1 - inside.flip(1).int().argmax(1)


def upsample_mask(mask: Tensor, gt: Tensor) -> Tensor:
    """(n, h, w) bool -> (n, 1, H, W) at the boxes' resolution, such that adaptive max-pooling back to (h, w)
    (the loader's downscaling) gives `mask` again: a pixel is set only if every window containing it is set
    (nearest upsampling when h, w divide H, W). Exact when H >= 2h and W >= 2w (every window then has a pixel
    of its own)."""
    (h, w), (big_h, big_w) = mask.shape[-2:], gt.shape[-2:]
    if (h, w) == (big_h, big_w):
        return mask.unsqueeze(1)
    (r0, r1), (c0, c1) = _containing(big_h, h), _containing(big_w, w)
    rows = mask[:, r0] & mask[:, r1]
    return (rows[:, :, c0] & rows[:, :, c1]).unsqueeze(1)


def training_mask(spec: dict[str, Any], gt: Tensor, seed: int, runs_dir: Path) -> Tensor:
    """The penalty mask of the training rows for the annotation `spec` ({"source": name, **args})."""
    args = dict(spec)
    name = args.pop("source", "gt")
    if name not in SOURCES:
        raise KeyError(f"unknown annotation source {name!r}; known: {', '.join(sorted(SOURCES))}")
    return SOURCES[name](gt, seed=seed, runs_dir=runs_dir, **args)
