"""The engine: every paper's training step, batch loop, recipe, evaluation, checkpoints and packing.

`step` (THE training step and batch loop), `recipe` (optimiser, lr schedule), `evaluate` (logits and metrics),
`loop` (`fit`: resume, selection, checkpoints, records), `checkpoint`, `pack` (`PackJob`: actdiff, TAP),
`weights` (a done run's model); here, the entry points that train runs from the store (`train_run`,
`train_pack`). A paper supplies its objective, its feed, its recipe and, where it has its own, its `Job`
(`repro.papers.Paper.job`)."""

from __future__ import annotations

import traceback
from typing import Any, Callable

import torch

from repro.data.registry import build_dataset  # PackJob's data, looked up here when a run starts
from repro.engine.checkpoint import Events
from repro.engine.evaluate import (batch_logits, evaluate, evaluate_members, metric_options, predict,
                                   predict_members, save_predictions, stack_members)
from repro.engine.loop import Best, Job, MixedStarts, NonFiniteLoss, fit
from repro.engine.pack import PackJob
from repro.engine.recipe import Schedule, build_optimizer, make_optimizer
from repro.engine.step import BatchMeans, MemberMeans, Step, resident_batches, run_epoch
from repro.engine.weights import load_weights
from repro.papers import get_paper, load_all
from repro.runs import record as contract
from repro.runs.store import RunRecord, atomic_write_text

__all__ = ["BatchMeans", "Best", "Events", "Job", "MemberMeans", "MixedStarts", "NonFiniteLoss", "PackJob",
           "Schedule", "Step", "batch_logits", "build_dataset", "build_optimizer", "evaluate", "evaluate_members",
           "fit", "load_weights", "make_optimizer", "metric_options", "predict", "predict_members",
           "resident_batches", "run_epoch", "save_predictions", "stack_members", "train_pack", "train_run"]


def train_run(record: RunRecord, device: torch.device, events: Events | None = None,
              checkpoint_seconds: float = 60.0, profile: str = "paper") -> dict[str, Any]:
    """Train one run to completion (resuming from its checkpoint) and write its records: through its paper's
    own job when its config names one (`method_args["trainer"]`: `repro.papers.Paper.job`), else `PackJob`.

    A NaN loss marks the run failed; any other exception is recorded and re-raised."""
    if record.config.method_args.get("trainer"):
        load_all()  # the methods the paper's job looks up (PackJob loads the registries itself)
        emit = events or (lambda e: None)

        def stage(other: RunRecord) -> dict[str, Any]:  # an earlier stage of a pipeline, through this same path
            return train_run(other, device, events, checkpoint_seconds, profile)

        make = get_paper(record.config.paper).job
        return _guarded([record], emit, lambda: fit(make(record, device, stage), device, emit, checkpoint_seconds,
                                                    profile))[0]
    return train_pack([record], device, events, checkpoint_seconds, profile)[0]


def train_pack(records: list[RunRecord], device: torch.device, events: Events | None = None,
               checkpoint_seconds: float = 60.0, profile: str = "paper") -> list[dict[str, Any]]:
    """Train runs of one architecture and training recipe (seeds, lambdas, pure penalties and data variants may
    differ: `repro.runs.launch.packs`) together (`repro.packed.Pack`; one run: the model itself), each resuming
    from its own checkpoint, which must be at the same epoch for all. Every run keeps its own folder, records,
    checkpoint and result, exactly as when trained alone.

    A NaN loss marks the members it concerns failed (the others keep their checkpoints); any other exception
    is recorded for every member and re-raised."""
    emit = events or (lambda e: None)

    def fit_groups(groups: list[list[RunRecord]]) -> list[dict[str, Any]]:
        return [res for g in groups
                for res in fit(PackJob(g, device, build_dataset), device, emit, checkpoint_seconds, profile)]

    def train() -> list[dict[str, Any]]:
        job = PackJob(records, device, build_dataset)
        if job.unpackable:  # e.g. dropout: train one by one instead
            for r in records:
                r.log(f"not packed ({job.unpackable})")
            return fit_groups([[r] for r in records])
        try:
            return fit(job, device, emit, checkpoint_seconds, profile)
        except MixedStarts as e:  # raised before any training: one sub-pack per resume epoch
            results = fit_groups([[records[i] for i in g] for g in e.groups])
            order = [i for g in e.groups for i in g]
            return [results[order.index(i)] for i in range(len(records))]

    return _guarded(records, emit, train)


def _guarded(records: list[RunRecord], emit: Events, train: Callable[[], Any]) -> Any:
    try:
        return train()
    except Exception as e:
        hit = records if not isinstance(e, NonFiniteLoss) or e.members is None else [records[m] for m in e.members]
        for record in hit:
            atomic_write_text(record.path(contract.FAILED), traceback.format_exc() + f"{type(e).__name__}: {e}\n")
            record.log(f"failed: {type(e).__name__}: {e}")
            emit({"event": "failed", "key": record.key, "error": f"{type(e).__name__}: {e}"})
        if not isinstance(e, NonFiniteLoss):
            raise
        return [{} for _ in records]


