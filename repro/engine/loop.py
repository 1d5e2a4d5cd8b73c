"""The one training loop (`fit`) for every paper.

A paper supplies a `Job`: its members' models and the states they checkpoint, one epoch of its objective over its
feed (through `repro.engine.step`), its evaluation, its selection rule and its extra stages' hooks. `fit` owns
resume, selection, checkpoint cadence, NaN handling, progress events and the run-folder contract
(`repro.runs.record`)."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from repro.engine.checkpoint import (Events, load_checkpoint, save_checkpoint, set_aside_damaged,
                                     set_rng_state)
from repro.provenance import device_name, provenance
from repro.runs import record as contract
from repro.runs.store import RunRecord, atomic_write, atomic_write_json, atomic_write_text
from repro.seeding import kernel_settings


class MixedStarts(ValueError):
    """The runs of a pack resume from different epochs; `groups`: the member indices of each epoch."""

    def __init__(self, starts: list[int]):
        super().__init__(f"a pack's runs must resume from the same epoch, not {starts}")
        self.groups = [[i for i, s in enumerate(starts) if s == e] for e in sorted(set(starts))]


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite; the run is marked failed (not retried). `members` lists
    which members of a pack it concerns (None: all)."""

    def __init__(self, message: str, members: list[int] | None = None):
        super().__init__(message)
        self.members = members


@dataclass
class Best:
    """Selected-epoch bookkeeping (0-based). With a split and metric: the first epoch with a strictly
    higher value (ties keep the earliest). With `split=None` (selection `final`): the last epoch."""

    split: str | None
    metric: str | None
    epoch: int = -1
    value: float = float("-inf")
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    state: dict[str, Tensor] | None = None

    @classmethod
    def from_selection(cls, selection: str) -> Best:
        if selection == "final":
            return cls(None, None)
        split, metric = selection.split("/")
        return cls(split, metric)

    def selects(self, metrics: dict[str, dict[str, float]], last: bool) -> bool:
        """Whether this epoch becomes the selected one."""
        if self.split is None:
            return last
        return metrics[self.split][self.metric] > self.value

    def update(self, epoch: int, metrics: dict[str, dict[str, float]], state: dict[str, Tensor]) -> None:
        self.epoch, self.metrics = epoch, metrics
        self.value = metrics[self.split][self.metric] if self.split else float(epoch)
        self.state = {k: v.detach().clone() for k, v in state.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "value": self.value, "metrics": self.metrics, "state": self.state}



class Job:
    """A paper's part of one run, or of a pack of runs that train together, driven by `fit`.

    A job sets `records` (one per member), `epochs`, `selection` ("split/metric", or "final": the last epoch)
    and `gens` (one generator per member), and implements the methods below. `resumable = False` restarts an
    interrupted run from scratch; `keep_last` keeps the final checkpoint as `last.pt` for a later stage."""

    records: list[RunRecord]
    epochs: int
    selection: str
    gens: list[torch.Generator]
    resumable: bool = True
    keep_last: bool = False

    def states(self) -> list[dict[str, Any]]:
        """Each member's state dicts: "model" (its weights, in the one-by-one format) and every other stateful
        object (optimizer, scheduler, AMP scaler), as they go into its checkpoint. Also valid before `ready`,
        where `fit` checks a checkpoint against it."""
        raise NotImplementedError

    def load(self, member: int, checkpoint: dict[str, Any]) -> None:
        """Restore a member's state dicts from its checkpoint (before `ready`)."""
        raise NotImplementedError

    def ready(self) -> None:
        """Called once the members are restored, before the first epoch."""

    def train_epoch(self, epoch: int) -> list[dict[str, Any]]:
        """One epoch of training; per member, the numbers to log (its loss parts, with "loss" for the total)."""
        raise NotImplementedError

    def evaluate(self, epoch: int, last: bool, bests: list[Best]) -> list[dict[str, dict[str, float]]]:
        """Per member, {split: {metric: value}}, with at least the selection split."""
        raise NotImplementedError

    def end_epoch(self, epoch: int, metrics: list[dict[str, dict[str, float]]]) -> None:
        """After the selection, before the checkpoint (a scheduler steps here)."""

    def selected(self, member: int, epoch: int) -> None:
        """The member's selection moved to this epoch."""

    def finish(self, member: int, best: Best, final: dict[str, dict[str, float]]) -> dict[str, Any]:
        """After the last epoch (final weights saved): the member's extra files and result keys (which may
        replace `best` and `final`)."""
        return {}

    def provenance(self, member: int) -> dict[str, Any]:
        """Extra provenance fields of a member."""
        return {}


def restore(job: Job, member: int, expected: dict[str, Any], best: Best,
             emit: Events) -> tuple[int, list[dict[str, Any]]]:
    """Restore a member from its checkpoint and rewrite its metrics.jsonl from the records the checkpoint holds
    (whatever a kill or a full disk left of the file: a torn line, records of later epochs); returns the next
    epoch and those records. A checkpoint that cannot be read or does not fit the job is set aside and the member
    starts from scratch; a metrics.jsonl damaged other than in its last line is set aside too."""
    record = job.records[member]
    fault = record.metrics_fault(finished=False)
    if fault:
        set_aside_damaged(record, contract.METRICS, fault, "its records are rewritten from the checkpoint", emit)
    ckpt = load_checkpoint(record, expected, emit) if job.resumable else None
    if ckpt is None:
        record.path(contract.METRICS).unlink(missing_ok=True)
        return 0, []
    job.load(member, ckpt)
    set_rng_state(job.gens[member], ckpt["rng"])
    for k, v in ckpt["best"].items():
        setattr(best, k, v)
    record.write_metrics(ckpt["records"])
    return ckpt["epoch"] + 1, ckpt["records"]


def _non_finite(logged: list[dict[str, Any]]) -> list[int]:
    """The members whose logged numbers are NaN or infinite."""
    return [m for m, d in enumerate(logged)
            if not all(math.isfinite(v) for v in d.values() if isinstance(v, (int, float)))]


def fit(job: Job, device: torch.device, emit: Events, checkpoint_seconds: float = 60.0,
        profile: str = "paper") -> list[dict[str, Any]]:
    """Train a job's runs to completion, each resuming from its own checkpoint (all at the same epoch), and
    write each run's records by the run-folder contract. A member's non-finite loss raises NonFiniteLoss."""
    records = job.records
    for r in records:
        r.path(contract.FAILED).unlink(missing_ok=True)
    bests = [Best.from_selection(job.selection) for _ in records]
    expected = job.states() if job.resumable else [{} for _ in records]  # as built, before any restore
    starts, history = zip(*[restore(job, i, expected[i], best, emit) for i, best in enumerate(bests)])
    start = starts[0]
    if any(s != start for s in starts):  # a checkpoint set aside, or a damaged checkpoint.json
        raise MixedStarts(starts)
    job.ready()
    for i, r in enumerate(records):
        atomic_write_json(r.path(contract.PROVENANCE), provenance(
            device=device_name(device), profile=profile, run_key=r.key, kernels=kernel_settings(), **job.provenance(i)))
        r.log(f"{'resuming at' if start else 'starting'} epoch {start} on {device_name(device)}"
              + (f", packed with {len(records) - 1} other runs" if len(records) > 1 else ""))
        emit({"event": "start", "key": r.key, "epoch": start, "epochs": job.epochs})
    t_run, t_ckpt = time.perf_counter(), time.monotonic()
    finals: list[dict[str, dict[str, float]]] = [{} for _ in records]
    for epoch in range(start, job.epochs):
        t0 = time.perf_counter()
        logged = job.train_epoch(epoch)
        bad = _non_finite(logged)
        if bad:
            raise NonFiniteLoss(f"non-finite training loss: {[logged[m] for m in bad]}", bad)
        last = epoch == job.epochs - 1
        metrics = job.evaluate(epoch, last, bests)
        selected = [best.selects(metrics[i], last) for i, best in enumerate(bests)]
        job.end_epoch(epoch, metrics)
        seconds = round((time.perf_counter() - t0) / len(records), 4)
        checkpoint = job.resumable and (last or time.monotonic() - t_ckpt >= checkpoint_seconds)
        states = job.states() if checkpoint or any(selected) else []
        for i, r in enumerate(records):
            if selected[i]:
                bests[i].update(epoch, metrics[i], states[i]["model"])
                job.selected(i, epoch)
            rec = {"key": r.key, "epoch": epoch, **logged[i],
                   **{f"{s}_{k}": v for s, d in metrics[i].items() for k, v in d.items()}, "seconds": seconds}
            history[i].append(rec)
            r.append_metrics(rec, sync=last)  # earlier records are also in the checkpoint
            if checkpoint:
                save_checkpoint(r, epoch, states[i], job.gens[i], bests[i].to_dict(), history[i])
        if checkpoint:
            t_ckpt = time.monotonic()
        for r in records:  # after every member's records: a kill here leaves the pack at one epoch
            emit({"event": "epoch", "key": r.key, "epoch": epoch + 1, "epochs": job.epochs})
        finals = metrics
    if start == job.epochs:  # resumed at the end: evaluate the final weights
        finals = job.evaluate(job.epochs - 1, True, bests)
    states = job.states()
    results = []
    for i, r in enumerate(records):
        atomic_write(r.path(contract.BEST), lambda f: torch.save(bests[i].state, f))
        atomic_write(r.path(contract.FINAL), lambda f: torch.save(states[i]["model"], f))
        result = {"key": r.key, "epochs": job.epochs, "selection": job.selection, "best_epoch": bests[i].epoch,
                  "best": bests[i].metrics, "final": finals[i],
                  "seconds": round((time.perf_counter() - t_run) / len(records), 2), "device": device_name(device)}
        result |= job.finish(i, bests[i], finals[i])
        atomic_write_json(r.path(contract.RESULT), result)
        atomic_write_text(r.path(contract.DONE), "")
        if job.keep_last and r.path(contract.CHECKPOINT).exists():
            os.replace(r.path(contract.CHECKPOINT), r.path(contract.LAST))
        for name in (contract.CHECKPOINT, contract.CHECKPOINT_INFO):
            r.path(name).unlink(missing_ok=True)
        r.log(f"done: selected epoch {bests[i].epoch} ({job.selection})")
        emit({"event": "done", "key": r.key})
        results.append(result)
    return results


