"""Training masks for the TAP-paper penalties (1 = the region to penalise), by annotation source (tap spec
§4.1, §5): the ground-truth tag boxes, and (registered by their modules) teacher saliency or random masks.

A source is `fn(gt, seed=..., runs_dir=..., **args) -> (N, 1, H, W) bool`, where `gt` is the (N, 1, H, W)
ground-truth box mask of the training rows, in the same order."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import Tensor

MaskSource = Callable[..., Tensor]
SOURCES: dict[str, MaskSource] = {}


def register_source(name: str) -> Callable[[MaskSource], MaskSource]:
    def deco(fn: MaskSource) -> MaskSource:
        SOURCES[name] = fn
        return fn

    return deco


@register_source("gt")
def ground_truth(gt: Tensor, **_: Any) -> Tensor:
    """The tag boxes themselves: get_mask of 1 - box at tau = 0.01 is exactly the box (§4.1)."""
    return gt.bool()


def training_mask(spec: dict[str, Any], gt: Tensor, seed: int, runs_dir: Path) -> Tensor:
    """The penalty mask of the training rows for the annotation `spec` ({"source": name, **args})."""
    args = dict(spec)
    name = args.pop("source", "gt")
    if name not in SOURCES:
        raise KeyError(f"unknown annotation source {name!r}; known: {', '.join(sorted(SOURCES))}")
    return SOURCES[name](gt, seed=seed, runs_dir=runs_dir, **args)
