"""Evaluation: logits over resident tensors (one model or a pack's members), in chunks, or over an iterable of
batches (a DataLoader, a paper's feed); metrics per split; the final logits as `predictions.pt`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable

import torch
from torch import Tensor, nn

from repro.config import RunConfig
from repro.metrics import compute
from repro.runs import record as contract
from repro.runs.store import RunRecord, atomic_write

EVAL_CHUNK = 512


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


@torch.no_grad()
def batch_logits(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device
                 ) -> tuple[Tensor, Tensor]:
    """Logits (float) and labels of a whole evaluation set given as (x, y) batches, in eval mode, on the CPU (the
    model's mode is restored)."""
    was = model.training
    model.eval()
    out, ys = [], []
    for x, y in batches:
        out.append(model(x.to(device, non_blocking=True))[0].float().cpu())
        ys.append(y.cpu())
    model.train(was)
    return torch.cat(out), torch.cat(ys)


def metric_options(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    """Per-metric options of a run: its `metric_args`, and the CE class weights for the `ce` metric (D-13)."""
    options = {k: dict(v) for k, v in cfg.method_args.get("metric_args", {}).items()}
    if cfg.method_args.get("ce_weight") is not None:
        options.setdefault("ce", {})["weight"] = cfg.method_args["ce_weight"]
    return options

