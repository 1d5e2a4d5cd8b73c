"""One run: seed, build data/model/objective, train, evaluate every epoch, checkpoint, write records."""

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
from repro.methods import build_objective
from repro.metrics import compute
from repro.models import build_model
from repro.provenance import device_name, provenance
from repro.runs.store import RunRecord, atomic_write, atomic_write_json, atomic_write_text
from repro.seeding import seed_everything

Events = Callable[[dict[str, Any]], None]
EVAL_CHUNK = 512


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite; the run is marked failed (not retried)."""


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

    def update(self, epoch: int, metrics: dict[str, dict[str, float]], model: nn.Module) -> None:
        self.epoch, self.metrics = epoch, metrics
        self.value = metrics[self.split][self.metric] if self.split else float(epoch)
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "value": self.value, "metrics": self.metrics, "state": self.state}


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, transform: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """The model's logits on `x`, in eval mode, in chunks (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    prep = transform or (lambda t: t)
    logits = torch.cat([model(prep(x[i:i + EVAL_CHUNK]))[0] for i in range(0, len(x), EVAL_CHUNK)])
    model.train(was_training)
    return logits


def evaluate(model: nn.Module, evals: dict[str, tuple[Tensor, Tensor]], metrics: tuple[str, ...],
             transform: Callable[[Tensor], Tensor] | None = None,
             options: dict[str, dict[str, Any]] | None = None,
             keep: dict[str, Tensor] | None = None) -> dict[str, dict[str, float]]:
    """The named metrics (with their `options`) on every evaluation split; `keep`, if given, receives each
    split's logits."""
    out = {}
    for name, (x, y) in evals.items():
        logits = predict(model, x, transform)
        if keep is not None:
            keep[name] = logits
        out[name] = compute(metrics, logits, y, options)
    return out


def save_predictions(record: RunRecord, logits: dict[str, Tensor], evals: dict[str, tuple[Tensor, Tensor]]) -> None:
    """`predictions.pt`: the final model's logits and the labels of every evaluation split, so that any metric
    variant can be recomputed without retraining (tap spec §10)."""
    out = {name: {"logits": logits[name].cpu(), "labels": y.cpu()} for name, (_, y) in evals.items()
           if name != "train"}
    atomic_write(record.path("predictions.pt"), lambda f: torch.save(out, f))


def train_step(model: nn.Module, objective: Callable, opt: torch.optim.Optimizer, x: Tensor, y: Tensor,
               mask: Tensor, gen: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
    """One optimiser step on one batch (objective, backward, step); the loss and its parts stay on the device."""
    loss, parts = objective(model, x, y, mask, gen)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss, parts


def train_epoch(model: nn.Module, objective: Callable, opt: torch.optim.Optimizer, data: TrainData,
                batch_size: int, gen: torch.Generator) -> dict[str, float]:
    """One pass over the training tensors in a seeded random order; returns the mean loss parts."""
    n = len(data.y)
    perm = torch.randperm(n, generator=gen, device=gen.device)
    sums: dict[str, Tensor] = defaultdict(lambda: torch.zeros((), device=data.y.device))
    for i in range(0, n, batch_size):
        idx = perm[i:i + batch_size]
        loss, parts = train_step(model, objective, opt, data.batch(data.x[idx]), data.y[idx], data.mask[idx], gen)
        sums["loss"] += loss.detach() * len(idx)
        for k, v in parts.items():
            sums[k] += v * len(idx)
    means = {k: (v / n).item() for k, v in sums.items()}
    if not all(math.isfinite(v) for v in means.values()):
        raise NonFiniteLoss(f"non-finite training loss: {means}")
    return means


def metric_options(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    """Per-metric options of a run: its `metric_args`, and the CE class weights for the `ce` metric (D-13)."""
    options = {k: dict(v) for k, v in cfg.method_args.get("metric_args", {}).items()}
    if cfg.method_args.get("ce_weight") is not None:
        options.setdefault("ce", {})["weight"] = cfg.method_args["ce_weight"]
    return options


def build_optimizer(model: nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    """Adam (PyTorch defaults) or SGD with momentum, at the run's constant lr, no weight decay."""
    args = dict(cfg.optimizer)
    name = args.pop("name")
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, **args)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, **args)
    raise ValueError(f"unknown optimizer {name!r}; known: adam, sgd")


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


def _checkpoint(record: RunRecord, epoch: int, model: nn.Module, opt: torch.optim.Optimizer,
                gen: torch.Generator, best: Best) -> None:
    state = {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
             "rng": _rng_state(gen), "best": best.to_dict()}
    atomic_write(record.path("checkpoint.pt"), lambda f: torch.save(state, f))


def _log(record: RunRecord, text: str) -> None:
    with open(record.path("log.txt"), "a") as f:
        f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + text + "\n")


def train_run(record: RunRecord, device: torch.device, events: Events | None = None,
              checkpoint_seconds: float = 60.0, profile: str = "paper") -> dict[str, Any]:
    """Train one run to completion (resuming from its checkpoint) and write its records.

    A NaN loss marks the run failed; any other exception is recorded and re-raised.
    """
    emit = events or (lambda e: None)
    try:
        if record.config.method_args.get("trainer") == "masktune":  # two-stage runs (masktune spec §0)
            from repro.masktune.train import train_masktune_run

            record.path("failed").unlink(missing_ok=True)
            result = train_masktune_run(record, device, emit, profile)
        else:
            result = _train(record, device, emit, checkpoint_seconds, profile)
    except Exception as e:
        atomic_write_text(record.path("failed"), traceback.format_exc() + f"{type(e).__name__}: {e}\n")
        _log(record, f"failed: {type(e).__name__}: {e}")
        emit({"event": "failed", "key": record.key, "error": f"{type(e).__name__}: {e}"})
        if not isinstance(e, NonFiniteLoss):
            raise
        return {}
    return result


def _train(record: RunRecord, device: torch.device, emit: Events, checkpoint_seconds: float,
           profile: str) -> dict[str, Any]:
    cfg: RunConfig = record.config
    record.path("failed").unlink(missing_ok=True)
    seed_everything(cfg.seed)
    data = build_dataset(cfg.dataset, cfg.data, cfg.seed, device, prepared_root=record.dir.parents[1] / "prepared")
    model = build_model(cfg.model, **cfg.model_args).to(device)
    objective = build_objective(cfg.method_args["objective"], cfg.method_args.get("ce_weight"))
    opt = build_optimizer(model, cfg)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1_000_003)
    best = Best.from_selection(cfg.selection)
    start = _resume(record, model, opt, gen, best, device)
    atomic_write_json(record.path("provenance.json"),
                      provenance(device=device_name(device), profile=profile, run_key=record.key))
    _log(record, f"{'resuming at' if start else 'starting'} epoch {start} on {device_name(device)}")
    emit({"event": "start", "key": record.key, "epoch": start, "epochs": cfg.epochs})
    t_run, t_ckpt = time.perf_counter(), time.monotonic()
    metrics = None
    options = metric_options(cfg)
    final_logits: dict[str, Tensor] = {}  # filled at the last epoch: predictions.pt reuses them
    with open(record.path("metrics.jsonl"), "a") as log:
        for epoch in range(start, cfg.epochs):
            t0 = time.perf_counter()
            losses = train_epoch(model, objective, opt, data, cfg.batch_size, gen)
            every = best.split or "valid"
            last = epoch == cfg.epochs - 1
            keep = final_logits if last else None
            metrics = evaluate(model, {k: v for k, v in data.evals.items() if k == every}, cfg.metrics, data.transform,
                               options, keep)
            selected = best.selects(metrics, last)
            if last or selected:
                # The other splits only matter at a selected epoch and at the end: the code's lazy test (§8.3).
                metrics |= evaluate(model, {k: v for k, v in data.evals.items() if k not in metrics},
                                    cfg.metrics, data.transform, options, keep)
            if selected:
                best.update(epoch, metrics, model)
            rec = {"key": record.key, "epoch": epoch, **losses,
                   **{f"{s}_{m}": v for s, d in metrics.items() for m, v in d.items()},
                   "seconds": round(time.perf_counter() - t0, 4)}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if last or time.monotonic() - t_ckpt >= checkpoint_seconds:
                _checkpoint(record, epoch, model, opt, gen, best)
                t_ckpt = time.monotonic()
            emit({"event": "epoch", "key": record.key, "epoch": epoch + 1, "epochs": cfg.epochs})
    torch.save(best.state, record.path("best.pt"))
    torch.save(model.state_dict(), record.path("final.pt"))
    final = metrics or evaluate(model, data.evals, cfg.metrics, data.transform, options, final_logits)
    save_predictions(record, final_logits, data.evals)
    result = {"key": record.key, "best_epoch": best.epoch, "selection": cfg.selection, "best": best.metrics, "final": final,
              "epochs": cfg.epochs, "seconds": round(time.perf_counter() - t_run, 2),
              "device": device_name(device)}
    atomic_write_json(record.path("result.json"), result)
    atomic_write_text(record.path("done"), "")
    record.path("checkpoint.pt").unlink(missing_ok=True)
    _log(record, f"done: selected epoch {best.epoch} ({cfg.selection})")
    emit({"event": "done", "key": record.key})
    return result


def load_weights(record: RunRecord, which: str, device: torch.device | str = "cpu") -> nn.Module:
    """The model of a done run with its `best` or `final` weights, in eval mode (built without pretrained
    weights, which the run's own replace: no download needed)."""
    cfg = record.config
    args = {**cfg.model_args, "init": "random"} if "init" in cfg.model_args else cfg.model_args
    model = build_model(cfg.model, **args)
    model.load_state_dict(torch.load(record.path(f"{which}.pt"), map_location=device, weights_only=True))
    return model.to(device).eval()

