"""The one training loop (`fit`) for every paper, and the packed job of actdiff and TAP.

A paper supplies a `Job`: its members' models, optimisers and generators, one epoch of its objective over its data
feed (resident tensors or a DataLoader), its evaluation, its selection rule and its extra stages' hooks. `fit` owns
resume, selection, checkpoint cadence, NaN handling, progress events and the run-folder contract
(`repro.runs.record`). `PackJob` trains runs of one architecture and recipe (`repro.packed`) together, each with
its own records; `repro.papers` names each paper's own jobs (cfaug's augmented batches, MaskTune's stages)."""

from __future__ import annotations

import math
import os
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn

from repro.config import RunConfig
from repro.data.registry import TrainData, build_dataset
from repro.methods import build_pack_objective
from repro.metrics import compute
from repro.models import build_model
from repro.papers import load_all
from repro.provenance import device_name, provenance
from repro.runs import record as contract
from repro.runs.store import RunRecord, atomic_write, atomic_write_json, atomic_write_text, set_aside
from repro.seeding import kernel_settings, seed_everything

Events = Callable[[dict[str, Any]], None]
EVAL_CHUNK = 512


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


@torch.no_grad()
def predict_members(model: nn.Module, xs: Tensor, transform: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """Logits (M, N, K) of a model of M members (`repro.packed.Pack`, or one model with M = 1) on each member's
    images `xs` (M, N, ...), in eval mode, in chunks (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    prep = transform or (lambda t: t)
    chunks = []
    for i in range(0, xs.shape[1], EVAL_CHUNK):
        logits = model(prep(xs[:, i:i + EVAL_CHUNK].flatten(0, 1)))[0]
        chunks.append(logits.reshape(len(xs), -1, logits.shape[-1]))
    model.train(was_training)
    return torch.cat(chunks, dim=1)


def predict(model: nn.Module, x: Tensor, transform: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """The model's logits on `x`, in eval mode, in chunks (the model's mode is restored)."""
    return predict_members(model, x[None], transform)[0]


def evaluate(model: nn.Module, evals: dict[str, tuple[Tensor, Tensor]], metrics: tuple[str, ...],
             transform: Callable[[Tensor], Tensor] | None = None,
             options: dict[str, dict[str, Any]] | None = None,
             keep: dict[str, Tensor] | None = None) -> dict[str, dict[str, float]]:
    """The named metrics (with their `options`) on every evaluation split; `keep`, if given, receives each
    split's logits."""
    return evaluate_members(model, [evals], metrics, transform, options, [keep] if keep is not None else None)[0]


def evaluate_members(model: nn.Module, evals: list[dict[str, tuple[Tensor, Tensor]]], metrics: tuple[str, ...],
                     transform: Callable[[Tensor], Tensor] | None = None,
                     options: dict[str, dict[str, Any]] | None = None,
                     keep: list[dict[str, Tensor]] | None = None) -> list[dict[str, dict[str, float]]]:
    """`evaluate` for each member of a packed model, on its own evaluation splits (same names and sizes)."""
    out: list[dict[str, dict[str, float]]] = [{} for _ in evals]
    for name in evals[0]:
        logits = predict_members(model, stack_members([e[name][0] for e in evals]), transform)
        for m, e in enumerate(evals):
            if keep is not None:
                keep[m][name] = logits[m]
            out[m][name] = compute(metrics, logits[m], e[name][1], options)
    return out


def stack_members(tensors: list[Tensor]) -> Tensor:
    """The members' tensors along a new first dimension (a view, not a copy, for one member)."""
    return tensors[0].unsqueeze(0) if len(tensors) == 1 else torch.stack(tensors)


def save_predictions(record: RunRecord, logits: dict[str, Tensor], evals: dict[str, tuple[Tensor, Tensor]]) -> None:
    """`predictions.pt`: the final model's logits and the labels of every evaluation split, so that any metric
    variant can be recomputed without retraining (tap spec §10)."""
    out = {name: {"logits": logits[name].cpu(), "labels": y.cpu()} for name, (_, y) in evals.items()
           if name != "train"}
    atomic_write(record.path(contract.PREDICTIONS), lambda f: torch.save(out, f))


def train_step(model: nn.Module, objective: Callable, opt: torch.optim.Optimizer, x: Tensor, y: Tensor,
               mask: Tensor, gens: torch.Generator | list[torch.Generator]) -> tuple[Tensor, dict[str, Tensor]]:
    """One optimiser step on one batch (objective, backward, step) for every member; the loss and the
    per-member parts stay on the device."""
    loss, parts = objective(model, x, y, mask, gens)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss, parts


def train_epoch(model: nn.Module, objective: Callable, opt: torch.optim.Optimizer,
                train: tuple[Tensor, Tensor, Tensor], batch: Callable[[Tensor], Tensor], batch_size: int,
                gens: list[torch.Generator], augment: Callable | None = None) -> list[dict[str, float]]:
    """One pass over each member's training tensors `train` = (x, y, mask), each (M, N, ...), in the member's
    own seeded random order; `augment` (`TrainData.augment`), if given, draws each batch's augmentation of
    images and masks from the members' generators; `batch` turns stored images into model inputs. Returns the
    mean loss parts per member."""
    x, y, mask = train
    members, n = y.shape[:2]
    rows = torch.arange(members, device=y.device)[:, None]
    perm = torch.stack([torch.randperm(n, generator=g, device=g.device) for g in gens]).to(y.device)
    sums: dict[str, Tensor] = defaultdict(lambda: torch.zeros(members, device=y.device))
    for i in range(0, n, batch_size):
        idx = perm[:, i:i + batch_size]
        xb, mb = x[rows, idx].flatten(0, 1), mask[rows, idx].flatten(0, 1)
        if augment is not None:
            xb, mb = augment(xb, mb, gens)
        _, parts = train_step(model, objective, opt, batch(xb), y[rows, idx].flatten(0, 1), mb, gens)
        sums["loss"] += sum(parts.values()) * idx.shape[1]
        for k, v in parts.items():
            sums[k] += v * idx.shape[1]
    return [{k: (v[m] / n).item() for k, v in sums.items()} for m in range(members)]


def metric_options(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    """Per-metric options of a run: its `metric_args`, and the CE class weights for the `ce` metric (D-13)."""
    options = {k: dict(v) for k, v in cfg.method_args.get("metric_args", {}).items()}
    if cfg.method_args.get("ce_weight") is not None:
        options.setdefault("ce", {})["weight"] = cfg.method_args["ce_weight"]
    return options


def build_optimizer(model: nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    """The run's optimiser (`cfg.optimizer`) at its lr."""
    return make_optimizer(model, cfg.optimizer, cfg.lr)


def make_optimizer(model: nn.Module, spec: dict[str, Any], lr: float) -> torch.optim.Optimizer:
    """Adam, SGD or RMSprop over the model's parameters: `spec` = {"name": "adam" | "sgd" | "rmsprop", **its
    arguments} (momentum, weight_decay; PyTorch's defaults otherwise)."""
    args = dict(spec)
    name = args.pop("name")
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, **args)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, **args)
    if name == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=lr, **args)
    raise ValueError(f"unknown optimizer {name!r}; known: adam, sgd, rmsprop")


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


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    import random

    import numpy as np

    state = {"gen": gen.get_state(), "torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(gen: torch.Generator, state: dict[str, Any]) -> None:
    import random

    import numpy as np

    gen.set_state(state["gen"])
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _checkpoint_fault(ckpt: Any, expected: dict[str, Any]) -> str | None:
    """Why a loaded checkpoint cannot resume this member (None if it can): not a checkpoint of this job, or model
    weights with other names or shapes."""
    if not isinstance(ckpt, dict):
        return f"holds a {type(ckpt).__name__}, not a checkpoint"
    missing = [k for k in ("epoch", "rng", "best", "records", *expected) if k not in ckpt]
    if missing:
        return "lacks " + ", ".join(missing)
    want, got = expected["model"], ckpt["model"]
    if not isinstance(got, dict) or set(got) != set(want):
        return "holds the weights of another model"
    shapes = [k for k in want if getattr(got[k], "shape", None) != want[k].shape]
    return f"holds {shapes[0]} with another shape" if shapes else None


def _set_aside(record: RunRecord, name: str, reason: str, then: str, emit: Events) -> None:
    """Move a damaged file of an unfinished run to `<name>.corrupt-<time>` (kept for the user) and say so, and
    what `then` happens."""
    aside = set_aside(record.path(name))
    message = f"damaged {name} in {record.dir} ({reason}): moved to {aside.name}, {then}"
    record.log(message)
    emit({"event": "warning", "key": record.key, "message": message})


def _load_checkpoint(record: RunRecord, expected: dict[str, Any], emit: Events) -> Any:
    """The member's checkpoint on the CPU, or None: none saved, or one that cannot be read or does not fit
    `expected` (the member's `Job.states`), which is set aside. On the CPU whatever the run's device: RNG states
    must be CPU byte tensors, and `load_state_dict` copies weights and optimiser state onto their parameters'
    device."""
    path = record.path(contract.CHECKPOINT)
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated, empty, garbage: torch raises many types
        fault = ": ".join(["unreadable", type(e).__name__, *str(e).splitlines()[:1]])
    else:
        fault = _checkpoint_fault(ckpt, expected)
    if fault:
        _set_aside(record, contract.CHECKPOINT, fault, "training from scratch", emit)
        record.path(contract.CHECKPOINT_INFO).unlink(missing_ok=True)
        return None
    return ckpt


def _restore(job: Job, member: int, expected: dict[str, Any], best: Best,
             emit: Events) -> tuple[int, list[dict[str, Any]]]:
    """Restore a member from its checkpoint and rewrite its metrics.jsonl from the records the checkpoint holds
    (whatever a kill or a full disk left of the file: a torn line, records of later epochs); returns the next
    epoch and those records. A checkpoint that cannot be read or does not fit the job is set aside and the member
    starts from scratch; a metrics.jsonl damaged other than in its last line is set aside too."""
    record = job.records[member]
    fault = record.metrics_fault(finished=False)
    if fault:
        _set_aside(record, contract.METRICS, fault, "its records are rewritten from the checkpoint", emit)
    ckpt = _load_checkpoint(record, expected, emit) if job.resumable else None
    if ckpt is None:
        record.path(contract.METRICS).unlink(missing_ok=True)
        return 0, []
    job.load(member, ckpt)
    _set_rng_state(job.gens[member], ckpt["rng"])
    for k, v in ckpt["best"].items():
        setattr(best, k, v)
    record.write_metrics(ckpt["records"])
    return ckpt["epoch"] + 1, ckpt["records"]


def _checkpoint(record: RunRecord, epoch: int, state: dict[str, Any], gen: torch.Generator, best: Best,
                records: list[dict[str, Any]]) -> None:
    """The resume point after `epoch`, with the run's records so far (metrics.jsonl is rewritten from them)."""
    ckpt = {"epoch": epoch, **state, "rng": _rng_state(gen), "best": best.to_dict(), "records": records}
    atomic_write(record.path(contract.CHECKPOINT), lambda f: torch.save(ckpt, f))
    atomic_write_json(record.path(contract.CHECKPOINT_INFO), {"epoch": epoch})  # read by the launcher for packs


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
    starts, history = zip(*[_restore(job, i, expected[i], best, emit) for i, best in enumerate(bests)])
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
                _checkpoint(r, epoch, states[i], job.gens[i], bests[i], history[i])
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


def train_run(record: RunRecord, device: torch.device, events: Events | None = None,
              checkpoint_seconds: float = 60.0, profile: str = "paper") -> dict[str, Any]:
    """Train one run to completion (resuming from its checkpoint) and write its records: through its paper's
    own job when its config names one (`method_args["trainer"]`: `repro.papers.Paper.job`), else `PackJob`.

    A NaN loss marks the run failed; any other exception is recorded and re-raised."""
    load_all()  # models, datasets and penalties are built by name; a fresh process has empty registries
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
    load_all()  # models, datasets and penalties are built by name; a fresh process has empty registries
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


@dataclass
class Member:
    """One run of a pack: its data, model (before packing) and optimiser."""

    data: TrainData
    model: nn.Module
    opt: torch.optim.Optimizer


class PackJob(Job):
    """Runs of one architecture and recipe (actdiff, TAP) on resident tensors, trained as one `repro.packed.Pack`
    (one run: its model itself), each member built exactly as when it trains alone."""

    def __init__(self, records: list[RunRecord], device: torch.device):
        self.records, self.device = records, device
        cfg: RunConfig = records[0].config
        self.cfg, self.epochs, self.selection = cfg, cfg.epochs, cfg.selection
        self.members, self.gens = [], []
        for r in records:
            c = r.config
            seed_everything(c.seed)
            data = build_dataset(c.dataset, c.data, c.seed, device, prepared_root=r.dir.parents[1] / "prepared")
            model = build_model(c.model, **c.model_args).to(device)
            self.members.append(Member(data, model, build_optimizer(model, c)))
            self.gens.append(torch.Generator(device=device).manual_seed(c.seed + 1_000_003))
        specs = [r.config.method_args["objective"] for r in records]
        self.objective = build_pack_objective(specs, cfg.method_args.get("ce_weight"))
        self.own = [{"loss", "ce", *(k for k, v in spec.items() if float(v["weight"]) != 0)} for spec in specs]
        self.unpackable = None
        if len(records) > 1:
            from repro.packed import packable

            self.unpackable = packable(self.members[0].model, self.objective) or _unstackable(
                [m.data for m in self.members])
        self.datas = [m.data for m in self.members]
        self.options = metric_options(cfg)
        self.final_logits: list[dict[str, Tensor]] = [{} for _ in records]  # filled at the last epoch
        self.net: nn.Module | None = None  # the pack, built by `ready`

    def load(self, member: int, checkpoint: dict[str, Any]) -> None:
        self.members[member].model.load_state_dict(checkpoint["model"])
        self.members[member].opt.load_state_dict(checkpoint["optimizer"])

    def ready(self) -> None:
        self.net, self.opt = _packed(self.members, self.cfg)
        self.train = tuple(stack_members([getattr(d, k) for d in self.datas]) for k in ("x", "y", "mask"))

    def states(self) -> list[dict[str, Any]]:
        if self.net is None:  # before `ready`: the members as built
            return [{"model": m.model.state_dict(), "optimizer": m.opt.state_dict()} for m in self.members]
        models, opts = _states(self.net, self.opt, len(self.members))
        return [{"model": m, "optimizer": o} for m, o in zip(models, opts)]

    def train_epoch(self, epoch: int) -> list[dict[str, Any]]:
        losses = train_epoch(self.net, self.objective, self.opt, self.train, self.datas[0].batch,
                             self.cfg.batch_size, self.gens, self.datas[0].augment)
        return [{k: v for k, v in loss.items() if k in self.own[i]}  # a pack's zero-weight terms are not a run's
                for i, loss in enumerate(losses)]

    def evaluate(self, epoch: int, last: bool, bests: list[Best]) -> list[dict[str, dict[str, float]]]:
        """The selection split every epoch; the other splits only at a selected epoch and at the end: the
        code's lazy test (§8.3)."""
        every, transform, metrics = bests[0].split or "valid", self.datas[0].transform, self.cfg.metrics
        keep = self.final_logits if last else None
        out = evaluate_members(self.net, [{every: d.evals[every]} for d in self.datas], metrics, transform,
                               self.options, keep)
        if last or any(b.selects(out[i], last) for i, b in enumerate(bests)):
            rest = evaluate_members(self.net, [{k: v for k, v in d.evals.items() if k != every} for d in self.datas],
                                    metrics, transform, self.options, keep)
            out = [a | b for a, b in zip(out, rest)]
        return out

    def finish(self, member: int, best: Best, final: dict[str, dict[str, float]]) -> dict[str, Any]:
        save_predictions(self.records[member], self.final_logits[member], self.datas[member].evals)
        return {"packed_with": len(self.records)}

    def provenance(self, member: int) -> dict[str, Any]:
        return {"packed_with": len(self.records)}


def _packed(members: list[Member], cfg: RunConfig) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The model and optimiser that train all members: the run's own for one member, else a `Pack` whose
    optimiser state stacks the members' (resumed) states."""
    if len(members) == 1:
        return members[0].model, members[0].opt
    from repro.packed import Pack, stack_optimizer_state

    net = Pack([m.model for m in members])
    opt = build_optimizer(net, cfg)
    opt.load_state_dict(stack_optimizer_state([m.opt.state_dict() for m in members]))
    return net, opt


def _states(net: nn.Module, opt: torch.optim.Optimizer, members: int) -> tuple[list[dict], list[dict]]:
    """Each member's model and optimiser state dicts, in the one-by-one format."""
    if members == 1:
        return [net.state_dict()], [opt.state_dict()]
    from repro.packed import slice_optimizer_state

    state = opt.state_dict()
    return ([net.member_state(m) for m in range(members)],
            [slice_optimizer_state(state, m, members) for m in range(members)])


def _unstackable(datas: list[TrainData]) -> str | None:
    """Why the members' data cannot be stacked into one pack's tensors (shapes differ), or None."""
    def shapes(d: TrainData) -> list[tuple[Any, ...]]:
        return [tuple(t.shape) for t in (d.x, d.y, d.mask)] + [
            (name, *x.shape, *y.shape) for name, (x, y) in d.evals.items()]

    first = shapes(datas[0])
    return None if all(shapes(d) == first for d in datas) else "the runs' data differ in shape"


def load_weights(record: RunRecord, which: str, device: torch.device | str = "cpu") -> nn.Module:
    """The model of a done run with its `best` or `final` weights, in eval mode (built without pretrained
    weights, which the run's own replace: no download needed)."""
    cfg = record.config
    args = {**cfg.model_args, "init": "random"} if "init" in cfg.model_args else cfg.model_args
    model = build_model(cfg.model, **args)
    model.load_state_dict(torch.load(contract.weights_file(record.dir, which), map_location=device, weights_only=True))
    return model.to(device).eval()

