"""Training runs from the store: one run through its paper's job or `PackJob`, or a pack of runs together; a failure
is recorded in each run's folder."""

from __future__ import annotations

import traceback
from typing import Any, Callable

import torch

from repro.engine.loop import Events, MixedStarts, NonFiniteLoss, fit
from repro.engine.pack import PackJob
from repro.runs import record as contract
from repro.runs.store import RunRecord, atomic_write_text


def train_run(record: RunRecord, device: torch.device, events: Events | None = None,
              checkpoint_seconds: float = 60.0, profile: str = "paper") -> dict[str, Any]:
    """Train one run to completion (resuming from its checkpoint) and write its records: through its paper's
    own job when its config names one (`method_args["trainer"]`: `repro.papers.Paper.job`), else `PackJob`.

    A NaN loss marks the run failed; any other exception is recorded and re-raised."""
    if record.config.method_args.get("trainer"):
        from repro.papers import get_paper

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
        return [res for g in groups for res in fit(PackJob(g, device), device, emit, checkpoint_seconds, profile)]

    def train() -> list[dict[str, Any]]:
        job = PackJob(records, device)
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


