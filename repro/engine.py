"""Training runs: seed, build data/model/objective, train, evaluate every epoch, checkpoint, write records;
for one run, or for a pack of runs of one architecture and recipe (`repro.packed`), each with its own records."""

from __future__ import annotations

import json
import math
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
from repro.provenance import device_name, provenance
from repro.runs.store import RunRecord, atomic_write, atomic_write_json, atomic_write_text
from repro.seeding import seed_everything

Events = Callable[[dict[str, Any]], None]
EVAL_CHUNK = 512
# Runs whose `method_args["trainer"]` names a paper's own training loop (never packed): module:function.
TRAINERS = {"masktune": "repro.papers.masktune.train:train_masktune_run",
            "cfaug": "repro.papers.cfaug.train:train_cfaug_run"}


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
    atomic_write(record.path("predictions.pt"), lambda f: torch.save(out, f))


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
                gens: list[torch.Generator]) -> list[dict[str, float]]:
    """One pass over each member's training tensors `train` = (x, y, mask), each (M, N, ...), in the member's
    own seeded random order; `batch` turns stored images into model inputs. Returns the mean loss parts per
    member; a member with a non-finite loss raises NonFiniteLoss naming it."""
    x, y, mask = train
    members, n = y.shape[:2]
    rows = torch.arange(members, device=y.device)[:, None]
    perm = torch.stack([torch.randperm(n, generator=g, device=g.device) for g in gens]).to(y.device)
    sums: dict[str, Tensor] = defaultdict(lambda: torch.zeros(members, device=y.device))
    for i in range(0, n, batch_size):
        idx = perm[:, i:i + batch_size]
        _, parts = train_step(model, objective, opt, batch(x[rows, idx].flatten(0, 1)),
                              y[rows, idx].flatten(0, 1), mask[rows, idx].flatten(0, 1), gens)
        sums["loss"] += sum(parts.values()) * idx.shape[1]
        for k, v in parts.items():
            sums[k] += v * idx.shape[1]
    means = [{k: (v[m] / n).item() for k, v in sums.items()} for m in range(members)]
    bad = [m for m, d in enumerate(means) if not all(math.isfinite(v) for v in d.values())]
    if bad:
        raise NonFiniteLoss(f"non-finite training loss: {[means[m] for m in bad]}", bad)
    return means


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


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    import random

    import numpy as np

    return {"gen": gen.get_state(), "torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate()}


def _set_rng_state(gen: torch.Generator, state: dict[str, Any]) -> None:
    import random

    import numpy as np

    gen.set_state(state["gen"])
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def _resume(record: RunRecord, model: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
            best: Best, device: torch.device) -> int:
    """Restore the last checkpoint and cut metrics.jsonl back to it; returns the next epoch."""
    ckpt_path = record.path("checkpoint.pt")
    if not ckpt_path.exists():
        record.path("metrics.jsonl").unlink(missing_ok=True)
        return 0
    ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    _set_rng_state(gen, ckpt["rng"])
    for k, v in ckpt["best"].items():
        setattr(best, k, v)
    start = ckpt["epoch"] + 1
    kept = []
    if record.path("metrics.jsonl").exists():
        for line in record.path("metrics.jsonl").read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by the kill
            if rec["epoch"] < start:
                kept.append(line)
    atomic_write_text(record.path("metrics.jsonl"), "".join(k + "\n" for k in kept))
    return start


def _checkpoint(record: RunRecord, epoch: int, model_state: dict[str, Tensor], opt_state: dict[str, Any],
                gen: torch.Generator, best: Best) -> None:
    state = {"epoch": epoch, "model": model_state, "optimizer": opt_state, "rng": _rng_state(gen),
             "best": best.to_dict()}
    atomic_write(record.path("checkpoint.pt"), lambda f: torch.save(state, f))
    atomic_write_json(record.path("checkpoint.json"), {"epoch": epoch})  # read by the launcher to group packs


def train_run(record: RunRecord, device: torch.device, events: Events | None = None,
              checkpoint_seconds: float = 60.0, profile: str = "paper") -> dict[str, Any]:
    """Train one run to completion (resuming from its checkpoint) and write its records.

    A NaN loss marks the run failed; any other exception is recorded and re-raised.
    """
    trainer = record.config.method_args.get("trainer")
    if trainer in TRAINERS:  # a paper's own loop: MaskTune's two stages (§0), cfaug's augmented batches (§5.1)
        import importlib

        module, name = TRAINERS[trainer].split(":")
        train = getattr(importlib.import_module(module), name)
        emit = events or (lambda e: None)
        return _guarded([record], emit, lambda: [train(record, device, emit, profile)])[0]
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
    return _guarded(records, emit, lambda: _train(records, device, emit, checkpoint_seconds, profile))


def _guarded(records: list[RunRecord], emit: Events, train: Callable[[], Any]) -> Any:
    try:
        return train()
    except Exception as e:
        hit = records if not isinstance(e, NonFiniteLoss) or e.members is None else [records[m] for m in e.members]
        for record in hit:
            atomic_write_text(record.path("failed"), traceback.format_exc() + f"{type(e).__name__}: {e}\n")
            record.log(f"failed: {type(e).__name__}: {e}")
            emit({"event": "failed", "key": record.key, "error": f"{type(e).__name__}: {e}"})
        if not isinstance(e, NonFiniteLoss):
            raise
        return [{} for _ in records]


@dataclass
class Member:
    """One run of a pack: its record, data, model (before packing), optimiser, generator and selection."""

    record: RunRecord
    data: TrainData
    model: nn.Module
    opt: torch.optim.Optimizer
    gen: torch.Generator
    best: Best
    start: int


def _member(record: RunRecord, device: torch.device) -> Member:
    """Build a run exactly as when it trains alone (seed, data, model, optimiser, generator), resumed."""
    cfg: RunConfig = record.config
    record.path("failed").unlink(missing_ok=True)
    seed_everything(cfg.seed)
    data = build_dataset(cfg.dataset, cfg.data, cfg.seed, device, prepared_root=record.dir.parents[1] / "prepared")
    model = build_model(cfg.model, **cfg.model_args).to(device)
    opt = build_optimizer(model, cfg)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1_000_003)
    best = Best.from_selection(cfg.selection)
    start = _resume(record, model, opt, gen, best, device)
    return Member(record, data, model, opt, gen, best, start)


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


def _train(records: list[RunRecord], device: torch.device, emit: Events, checkpoint_seconds: float,
           profile: str) -> list[dict[str, Any]]:
    members = [_member(r, device) for r in records]
    cfg: RunConfig = records[0].config
    specs = [r.config.method_args["objective"] for r in records]
    objective = build_pack_objective(specs, cfg.method_args.get("ce_weight"))
    if len(members) > 1:
        from repro.packed import packable

        reason = packable(members[0].model, objective) or _unstackable([m.data for m in members])
        if reason is not None:  # e.g. dropout: train one by one instead
            for m in members:
                m.record.log(f"not packed ({reason})")
            return [r for rec in records for r in _train([rec], device, emit, checkpoint_seconds, profile)]
    start = members[0].start
    if any(m.start != start for m in members):
        raise ValueError("a pack's runs must resume from the same epoch: " + ", ".join(
            f"{m.record.key} at {m.start}" for m in members))
    net, opt = _packed(members, cfg)
    gens, datas = [m.gen for m in members], [m.data for m in members]
    train = tuple(stack_members([getattr(d, k) for d in datas]) for k in ("x", "y", "mask"))  # once, not per epoch
    for m in members:
        atomic_write_json(m.record.path("provenance.json"), provenance(
            device=device_name(device), profile=profile, run_key=m.record.key, packed_with=len(members)))
        m.record.log(f"{'resuming at' if start else 'starting'} epoch {start} on {device_name(device)}"
                       + (f", packed with {len(members) - 1} other runs" if len(members) > 1 else ""))
        emit({"event": "start", "key": m.record.key, "epoch": start, "epochs": cfg.epochs})
    own = [{"loss", "ce", *(k for k, v in spec.items() if float(v["weight"]) != 0)} for spec in specs]
    t_run, t_ckpt = time.perf_counter(), time.monotonic()
    options = metric_options(cfg)
    transform = datas[0].transform
    finals: list[dict[str, dict[str, float]]] = [{} for _ in members]
    final_logits: list[dict[str, Tensor]] = [{} for _ in members]  # filled at the last epoch
    logs = [open(m.record.path("metrics.jsonl"), "a") for m in members]
    try:
        for epoch in range(start, cfg.epochs):
            t0 = time.perf_counter()
            losses = [{k: v for k, v in loss.items() if k in own[i]}  # a pack's zero-weight terms are not a run's
                      for i, loss in enumerate(train_epoch(net, objective, opt, train, datas[0].batch, cfg.batch_size,
                                                           gens))]
            every = members[0].best.split or "valid"
            last = epoch == cfg.epochs - 1
            keep = final_logits if last else None
            metrics = evaluate_members(net, [{every: d.evals[every]} for d in datas], cfg.metrics, transform,
                                       options, keep)
            selected = [m.best.selects(metrics[i], last) for i, m in enumerate(members)]
            if last or any(selected):
                # The other splits only matter at a selected epoch and at the end: the code's lazy test (§8.3).
                rest = evaluate_members(net, [{k: v for k, v in d.evals.items() if k != every} for d in datas],
                                        cfg.metrics, transform, options, keep)
                metrics = [a | b for a, b in zip(metrics, rest)]
            seconds = round((time.perf_counter() - t0) / len(members), 4)
            checkpoint = last or time.monotonic() - t_ckpt >= checkpoint_seconds
            model_states, opt_states = _states(net, opt, len(members)) if checkpoint or any(selected) else ([], [])
            for i, m in enumerate(members):
                if selected[i]:
                    m.best.update(epoch, metrics[i], model_states[i])
                rec = {"key": m.record.key, "epoch": epoch, **losses[i],
                       **{f"{s}_{k}": v for s, d in metrics[i].items() for k, v in d.items()}, "seconds": seconds}
                logs[i].write(json.dumps(rec) + "\n")
                logs[i].flush()
                if checkpoint:
                    _checkpoint(m.record, epoch, model_states[i], opt_states[i], m.gen, m.best)
            if checkpoint:
                t_ckpt = time.monotonic()
            for m in members:  # after every member's records: a kill here leaves the pack at one epoch
                emit({"event": "epoch", "key": m.record.key, "epoch": epoch + 1, "epochs": cfg.epochs})
            finals = metrics
    finally:
        for f in logs:
            f.close()
    model_states, _ = _states(net, opt, len(members))
    if not finals[0]:  # nothing left to train (resumed at the end): evaluate the final weights
        finals = evaluate_members(net, [d.evals for d in datas], cfg.metrics, transform, options, final_logits)
    results = []
    for i, m in enumerate(members):
        torch.save(m.best.state, m.record.path("best.pt"))
        torch.save(model_states[i], m.record.path("final.pt"))
        save_predictions(m.record, final_logits[i], datas[i].evals)
        result = {"key": m.record.key, "best_epoch": m.best.epoch, "selection": cfg.selection,
                  "best": m.best.metrics, "final": finals[i], "epochs": cfg.epochs,
                  "seconds": round((time.perf_counter() - t_run) / len(members), 2), "device": device_name(device),
                  "packed_with": len(members)}
        atomic_write_json(m.record.path("result.json"), result)
        atomic_write_text(m.record.path("done"), "")
        for name in ("checkpoint.pt", "checkpoint.json"):
            m.record.path(name).unlink(missing_ok=True)
        m.record.log(f"done: selected epoch {m.best.epoch} ({cfg.selection})")
        emit({"event": "done", "key": m.record.key})
        results.append(result)
    return results


def load_weights(record: RunRecord, which: str, device: torch.device | str = "cpu") -> nn.Module:
    """The model of a done run with its `best` or `final` weights, in eval mode (built without pretrained
    weights, which the run's own replace: no download needed)."""
    cfg = record.config
    args = {**cfg.model_args, "init": "random"} if "init" in cfg.model_args else cfg.model_args
    model = build_model(cfg.model, **args)
    model.load_state_dict(torch.load(record.path(f"{which}.pt"), map_location=device, weights_only=True))
    return model.to(device).eval()

