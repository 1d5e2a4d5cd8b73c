"""The cross study's jobs (`repro.papers.Paper.job`, for cells whose `method_args` name a "trainer"; every other
cell is a penalty run that `repro.engine.PackJob` trains as its benchmark's plain run does).

"cross.cfaug": cfaug's own objective (`repro.papers.cfaug.losses.CfaugObjective`, the run's `CfaugMethod`
settings: CF, F, Sal with the paper's loss normalisation and switches) on a resident-tensor benchmark, through the
benchmark's own job and recipe (`PackJob`, one run). cfaug's foreground mask is the benchmark's LOOK mask: 1 where
LOOK is exactly 1, as actdiff's penalties read it; every image has one (cfaug's has_bbox is 1 on every row).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from repro.data.registry import build_dataset
from repro.engine.loop import Job
from repro.engine.pack import PackJob
from repro.methods import method, register_method
from repro.papers.cfaug.losses import CfaugMethod, CfaugObjective
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


@register_method("cross.cfaug")
def cfaug_cell(record: RunRecord, device: torch.device, stage: Callable[[RunRecord], Any]) -> Job:
    """A CF / F / Sal cell: the benchmark's plain job with cfaug's objective."""
    return PackJob([record], device, build_dataset, objective=ResidentCfaug(record.config.method_args["cfaug"]))


def cross_job(record: RunRecord, device: torch.device, stage: Callable[[RunRecord], Any]) -> Job:
    """The job the cell's trainer registered (`repro.methods.register_method`)."""
    return method(record.config.method_args["trainer"])(record, device, stage)
