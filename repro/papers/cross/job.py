"""The cross study's own jobs: foreign cells of a benchmark whose home paper trains through its own job (not
`repro.engine.PackJob`), trained by that same job with only the objective changed. Biased MNIST: MaskTune's ERM
job, its cross-entropy replaced by the cell's penalty objective (`repro.methods.build_objective`) fed the masks
derived from each batch (`repro.papers.cross.masks`), or for Classify Masked by the cross-entropy of the batch
kept inside LOOK."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from repro.config import RunConfig
from repro.engine import Job
from repro.engine.step import Objective
from repro.methods import build_objective
from repro.papers.cross.masks import corner_square, keep_look, square_digit_look
from repro.papers.masktune.train import ErmJob, Stage, cross_entropy
from repro.runs.store import RunRecord

BATCH_MASKS: dict[str, Callable[[Tensor], Tensor]] = {  # a biased-MNIST cell's mask name -> its derivation
    "square": corner_square,
    "square_digit": square_digit_look,
}


def batch_objective(cfg: RunConfig) -> Objective:
    """A foreign cell's objective (model, x, y, gen): its penalty spec (`method_args["objective"]`) on each batch
    with the mask `data["mask"]` derived from it; with `data["masked_inputs"]`, the plain cross-entropy of the
    batch with every pixel outside that mask set to 0 (Classify Masked)."""
    spec, name = cfg.method_args["objective"], cfg.data["mask"]
    if name not in BATCH_MASKS:
        raise ValueError(f"cross: no batch mask {name!r}; known: {', '.join(BATCH_MASKS)}")
    derive = BATCH_MASKS[name]
    if cfg.data.get("masked_inputs"):
        if spec:
            raise ValueError("cross: a cell with masked inputs trains on the plain cross-entropy, not a penalty")
        return lambda model, x, y, gen: cross_entropy(model, keep_look(x, derive(x)), y, gen)
    penalties = build_objective(spec)

    def objective(model: nn.Module, x: Tensor, y: Tensor, gen: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        return penalties(model, x, y, derive(x), [gen])

    return objective


class BiasedMnistJob(ErmJob):
    """A biased-MNIST foreign cell: MaskTune's ERM stage (data, model, recipe, selection on first best val
    accuracy, results) with the cell's objective."""

    def __init__(self, record: RunRecord, device: torch.device, stage: Stage | None = None):
        super().__init__(record, device, stage)
        self.objective = batch_objective(self.cfg)


JOBS: dict[str, Callable[..., Job]] = {"biased_mnist": BiasedMnistJob}  # home dataset -> its cells' job


def cross_job(record: RunRecord, device: torch.device, stage: Stage) -> Job:
    """The paper registry's job factory (`repro.papers.Paper.job`) for the cross cells whose config names a
    trainer (the others train as packs): the job of the cell's home dataset (`data["home"]`)."""
    home = record.config.data.get("home")
    if home not in JOBS:
        raise ValueError(f"cross: no job for the cells of {home!r}; known: {', '.join(JOBS)}")
    return JOBS[home](record, device, stage)
