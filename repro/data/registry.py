"""Dataset builders by name, registered by each paper (`repro.papers.load_all`): each turns
a run's data settings into tensors on the training device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor


@dataclass
class TrainData:
    """Training tensors (image, ROI mask, label) and the evaluation splits, all on one device.

    `evals` maps a split name to (images, labels); "train" is the training set as the code evaluates it
    (eval mode, transformed exactly as in training). `transform`, if set, turns stored images into model
    inputs batch by batch, so large sets can stay compact (uint8) on the device. `augment`, if set, draws the
    training augmentation of each batch on the device: (x, mask, one generator per member) -> (x, mask).
    """

    x: Tensor
    mask: Tensor
    y: Tensor
    evals: dict[str, tuple[Tensor, Tensor]]
    transform: Callable[[Tensor], Tensor] | None = None
    augment: Callable[[Tensor, Tensor, list[torch.Generator]], tuple[Tensor, Tensor]] | None = None

    def batch(self, x: Tensor) -> Tensor:
        """A stored batch as the model sees it (e.g. uint8 -> normalised float, on the device)."""
        return self.transform(x) if self.transform else x


DATASETS: dict[str, Callable[..., TrainData]] = {}

# Per dataset, its data settings that change tensor values only (not shapes, sizes or the transform): runs that
# differ in them can train in one pack, each on its own tensors (`repro.runs.launch.packs`). Filled by
# `register_dataset`.
MEMBER_OPTIONS: dict[str, tuple[str, ...]] = {}

# Datasets whose resident-tensor runs (`repro.engine.PackJob`) keep their final checkpoint (weights and optimiser
# state) as `last.pt` for a later stage that continues from it (the cross study's MaskTune and RandMask finetunes);
# filled by the paper that needs it. It changes no run key and no number, only which files a done run keeps.
KEEP_LAST: set[str] = set()


def register_dataset(name: str, member_options: tuple[str, ...] = ()
                     ) -> Callable[[Callable[..., TrainData]], Callable[..., TrainData]]:
    """Decorator registering a dataset builder under `name`, with its `MEMBER_OPTIONS`."""

    def deco(fn: Callable[..., TrainData]) -> Callable[..., TrainData]:
        DATASETS[name] = fn
        if member_options:
            MEMBER_OPTIONS[name] = member_options
        return fn

    return deco


def build_dataset(name: str, args: dict[str, Any], seed: int, device: torch.device,
                  prepared_root: Path) -> TrainData:
    """Build dataset `name` with the run's data settings; `seed` is the run seed. A `prepared` setting is
    a folder relative to `prepared_root` (derived data made by `repro data prepare`)."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    if "prepared" in args:
        args = {**args, "prepared": prepared_root / args["prepared"]}
    return DATASETS[name](seed=seed, device=device, **args)
