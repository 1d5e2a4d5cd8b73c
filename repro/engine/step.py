"""THE training step and THE batch loop of every paper.

`Step` is one optimiser step on one batch: the paper's objective (model, *batch -> loss, named parts), under fp16
autocast where the recipe asks (cfaug C-10), zero_grad, backward through the AMP scaler, clipping at a total
norm where the recipe asks (cfaug C-11), the optimiser step. `run_epoch` drives it over a feed: resident tensors
(`resident_batches`, actdiff and TAP), or any iterable of batches (a DataLoader, a paper's own feed); a tally
reduces the per-batch parts to the epoch's logged numbers (`MemberMeans`, `BatchMeans`, or the paper's own).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from typing import Any, Callable, Protocol

import torch
from torch import Tensor, nn

Objective = Callable[..., tuple[Tensor, dict[str, Tensor]]]


class Step:
    """One optimiser step of `model` on one batch: `objective(model, *batch)`, under fp16 autocast when `amp`,
    the (scaled, when `amp`) backward, clipping of the gradients' total norm at `clip` (0: none), the step.
    Without `amp` the scaler is disabled and the step is a plain backward and `opt.step()`."""

    def __init__(self, model: nn.Module, objective: Objective, opt: torch.optim.Optimizer, amp: bool = False,
                 clip: float = 0.0):
        self.model, self.objective, self.opt, self.amp, self.clip = model, objective, opt, amp, clip
        self.device_type = next(model.parameters()).device.type
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=amp)

    def __call__(self, *batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss and its parts (on the device, not synchronised)."""
        autocast = torch.autocast(self.device_type, dtype=torch.float16) if self.amp else nullcontext()
        with autocast:
            loss, parts = self.objective(self.model, *batch)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.clip:
            self.scaler.unscale_(self.opt)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        return loss, parts


class Tally(Protocol):
    """Reduces an epoch's steps to the numbers it logs (one dict per member)."""

    def add(self, loss: Tensor, parts: dict[str, Tensor], batch: tuple[Any, ...]) -> None: ...

    def result(self) -> list[dict[str, float]]: ...


def run_epoch(step: Step, batches: Iterable[tuple[Any, ...]], tally: Tally) -> list[dict[str, float]]:
    """One pass of `step` over `batches` (each the objective's arguments after the model); the tally's numbers."""
    for batch in batches:
        loss, parts = step(*batch)
        tally.add(loss, parts, batch)
    return tally.result()


def resident_batches(train: tuple[Tensor, Tensor, Tensor], batch: Callable[[Tensor], Tensor], batch_size: int,
                     gens: list[torch.Generator], augment: Callable | None = None
                     ) -> Iterator[tuple[Tensor, Tensor, Tensor, list[torch.Generator]]]:
    """Batches (x, y, mask, gens) of each member's resident training tensors `train` = (x, y, mask), each
    (M, N, ...), in the member's own seeded random order, the members' rows concatenated; `augment`
    (`TrainData.augment`), if given, draws each batch's augmentation of images and masks from the members'
    generators; `batch` turns stored images into model inputs."""
    x, y, mask = train
    members, n = y.shape[:2]
    rows = torch.arange(members, device=y.device)[:, None]
    perm = torch.stack([torch.randperm(n, generator=g, device=g.device) for g in gens]).to(y.device)
    for i in range(0, n, batch_size):
        idx = perm[:, i:i + batch_size]
        xb, mb = x[rows, idx].flatten(0, 1), mask[rows, idx].flatten(0, 1)
        if augment is not None:
            xb, mb = augment(xb, mb, gens)
        yield batch(xb), y[rows, idx].flatten(0, 1), mb, gens


class MemberMeans:
    """Per member, the mean over its samples of each loss part (M,) and of their sum, "loss"."""

    def __init__(self, members: int, device: torch.device):
        self.members, self.n = members, 0
        self.sums: dict[str, Tensor] = defaultdict(lambda: torch.zeros(members, device=device))

    def add(self, loss: Tensor, parts: dict[str, Tensor], batch: tuple[Any, ...]) -> None:
        rows = batch[1].shape[0] // self.members
        self.n += rows
        self.sums["loss"] += sum(parts.values()) * rows
        for k, v in parts.items():
            self.sums[k] += v * rows

    def result(self) -> list[dict[str, float]]:
        return [{k: (v[m] / self.n).item() for k, v in self.sums.items()} for m in range(self.members)]


class BatchMeans:
    """One member: the mean over batches of the loss and of each part."""

    def __init__(self, device: torch.device):
        self.device, self.n = device, 0
        self.sums: dict[str, Tensor] = {}

    def add(self, loss: Tensor, parts: dict[str, Tensor], batch: tuple[Any, ...]) -> None:
        for k, v in {"loss": loss, **parts}.items():
            self.sums[k] = self.sums.get(k, 0) + torch.as_tensor(v, device=self.device).detach().float()
        self.n += 1

    def result(self) -> list[dict[str, float]]:
        return [{k: (v / max(self.n, 1)).item() for k, v in self.sums.items()}]
