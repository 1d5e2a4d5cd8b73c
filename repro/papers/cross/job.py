"""The cross study's jobs (`repro.papers.Paper.job`) for the cells whose `method_args` name a trainer, each a
registered method (`repro.methods.register_method`); every other cell is a penalty run that `repro.engine.PackJob`
trains as its benchmark's plain run does.

- "cross.cfaug": cfaug's own objective (`repro.papers.cfaug.losses.CfaugObjective` with the run's `CfaugMethod`
  settings: CF, F, Sal with the paper's loss normalisation and switches) on a resident-tensor benchmark, through the
  benchmark's own job and recipe (`PackJob`, one run).
- "cross.masktune_erm": a biased-MNIST foreign cell, MaskTune's ERM job (data, model, recipe, selection, results)
  with the cell's objective fed the masks derived from each batch (`repro.papers.cross.masks`), or for Classify
  Masked the cross-entropy of the batch kept inside LOOK.

cfaug's foreground mask is the benchmark's LOOK mask: 1 where LOOK is exactly 1, as actdiff's penalties read it;
every image has one (cfaug's has_bbox is 1 on every row).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from repro.config import RunConfig
from repro.data.registry import build_dataset
from repro.engine.loop import Job
from repro.engine.pack import PackJob
from repro.engine.step import Objective
from repro.methods import build_objective, method, register_method
from repro.papers.cfaug.losses import CfaugMethod, CfaugObjective
from repro.papers.cross.masks import corner_square, keep_look, square_digit_look
from repro.papers.masktune.train import ErmJob, Stage, cross_entropy
from repro.runs.store import RunRecord


class ResidentCfaug:
    """cfaug's objective as a resident-tensor objective: `(model, x, y, mask, generators)` -> loss, parts, with
    LOOK (`mask == 1`) as the foreground of every image."""

    unpackable = "cfaug's objective trains one run at a time"

    def __init__(self, settings: dict[str, Any]):
        self.objective = CfaugObjective(CfaugMethod.from_args(settings))

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, mask: Tensor, generators: list[torch.Generator]
                 ) -> tuple[Tensor, dict[str, Tensor]]:
        batch = {"x": x, "y": y, "mask": (mask == 1).to(x.dtype), "has_bbox": torch.ones_like(y)}
        return self.objective(model, batch, generators[0])


def cell_objective(cfg: RunConfig) -> Objective:
    """A cell's objective on (model, x, y, mask, generators): cfaug's (`method_args["cfaug"]`) or the penalties of
    `method_args["objective"]` added to the cross-entropy."""
    if "cfaug" in cfg.method_args:
        return ResidentCfaug(cfg.method_args["cfaug"])
    return build_objective(cfg.method_args["objective"])


@register_method("cross.cfaug")
def cfaug_cell(record: RunRecord, device: torch.device, stage: Stage) -> Job:
    """A CF / F / Sal cell of a resident-tensor benchmark: its plain job with cfaug's objective."""
    return PackJob([record], device, build_dataset, objective=cell_objective(record.config))


BATCH_MASKS: dict[str, Callable[[Tensor], Tensor]] = {  # a biased-MNIST cell's mask name -> its derivation
    "square": corner_square,
    "square_digit": square_digit_look,
}


def batch_objective(cfg: RunConfig) -> Callable[..., tuple[Tensor, dict[str, Tensor]]]:
    """A biased-MNIST cell's objective (model, x, y, gen): `cell_objective` on each batch with the mask
    `data["mask"]` derived from it; with `data["masked_inputs"]`, the plain cross-entropy of the batch with every
    pixel outside that mask set to 0 (Classify Masked)."""
    name = cfg.data["mask"]
    if name not in BATCH_MASKS:
        raise ValueError(f"cross: no batch mask {name!r}; known: {', '.join(BATCH_MASKS)}")
    derive = BATCH_MASKS[name]
    if cfg.data.get("masked_inputs"):
        if cfg.method_args.get("objective") or "cfaug" in cfg.method_args:
            raise ValueError("cross: a cell with masked inputs trains on the plain cross-entropy, not a penalty")
        return lambda model, x, y, gen: cross_entropy(model, keep_look(x, derive(x)), y, gen)
    terms = cell_objective(cfg)

    def objective(model: nn.Module, x: Tensor, y: Tensor, gen: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        return terms(model, x, y, derive(x), [gen])

    return objective


@register_method("cross.masktune_erm")
class BiasedMnistJob(ErmJob):
    """A biased-MNIST foreign cell: MaskTune's ERM stage with the cell's objective."""

    def __init__(self, record: RunRecord, device: torch.device, stage: Stage | None = None):
        super().__init__(record, device, stage)
        self.objective = batch_objective(self.cfg)


def cross_job(record: RunRecord, device: torch.device, stage: Stage) -> Job:
    """The paper registry's job factory: the job the cell's trainer registered."""
    return method(record.config.method_args["trainer"])(record, device, stage)
