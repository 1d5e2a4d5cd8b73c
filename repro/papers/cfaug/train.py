"""One cfaug run (spec §5-6): augmented batches through `repro.papers.cfaug.losses.step_loss`, the dataset's optimiser
and per-epoch schedule, gradient clipping (C-11), fp16 AMP where the spec says (C-10), every evaluation set
after every epoch, and the first best-validation epoch's metrics as the result (§6.5).

The run folder holds `metrics.jsonl` (one record per epoch, all sets), `best.pt` and `predictions.pt` (the
selected epoch's weights and its logits on every evaluation set), `last.pt` (weights, optimiser, scheduler, AMP
scaler and generator state: the per-epoch resume point) and `result.json`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from repro.config import RunConfig
from repro.engine import NonFiniteLoss, build_optimizer
from repro.models import build_model
from repro.provenance import device_name, provenance
from repro.runs.epochs import finish, resume
from repro.runs.store import RunRecord, atomic_write, atomic_write_json
from repro.seeding import seed_everything, seed_worker

Events = Callable[[dict[str, Any]], None]
LIMIT_SEED = 0  # reduced profiles: the same subsets for every run


def method_of(cfg: RunConfig) -> Any:
    """The run's objective settings as `CfaugMethod` (the method_args that are its fields)."""
    from repro.papers.cfaug.losses import CfaugMethod

    names = {f.name for f in fields(CfaugMethod)}
    return CfaugMethod(**{k: v for k, v in cfg.method_args.items() if k in names})


def build_scheduler(opt: torch.optim.Optimizer, schedule: dict[str, Any]) -> Any:
    """MultiStepLR (IN-9, CCT) or ReduceLROnPlateau on the val CE (Waterbirds, C-17), stepped per epoch."""
    if schedule["kind"] == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, schedule["milestones"], schedule["gamma"])
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=schedule["factor"],
                                                      patience=schedule["patience"], threshold=schedule["threshold"])


def loader(ds: Dataset, batch: int, workers: int, device: torch.device, seed: int | None) -> DataLoader:
    """Batches of `ds` (shuffled by `seed`, or in order when None: an evaluation set, whose workers then persist
    across epochs), decoded by seeded workers."""
    from repro.papers.cfaug.data import collate

    gen = torch.Generator().manual_seed(seed if seed is not None else 0)
    return DataLoader(ds, batch_size=batch, shuffle=seed is not None, num_workers=workers, collate_fn=collate,
                      worker_init_fn=seed_worker, generator=gen, pin_memory=device.type == "cuda",
                      persistent_workers=workers > 0 and seed is None)


def train_loader(data: Any, cfg: RunConfig, device: torch.device, epoch: int) -> DataLoader:
    """The epoch's training batches, shuffled by the run seed and epoch; with Fig 5's extra IN-9L images
    (data_ratio > 1), each batch wholly from one source, the sources interleaved at random (§11)."""
    from repro.papers.cfaug.data import SourceBatchSampler, collate

    stream = cfg.seed * 1000 + epoch
    data.train.set_stream(stream)  # the augmentations' draws: the same on resume
    if data.extra is None:
        return loader(data.train, cfg.batch_size, cfg.method_args["workers"], device, stream)
    data.extra.set_stream(stream)
    sampler = SourceBatchSampler([len(data.train), len(data.extra)], cfg.batch_size, cfg.seed)
    sampler.set_epoch(epoch)
    return DataLoader(ConcatDataset([data.train, data.extra]), batch_sampler=sampler, collate_fn=collate,
                      num_workers=cfg.method_args["workers"], worker_init_fn=seed_worker,
                      pin_memory=device.type == "cuda")


def _on(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def uses_amp(cfg: RunConfig, device: torch.device) -> bool:
    """C-10 auto: fp16 AMP on CUDA for runs without Sal (whose double backward runs in fp32)."""
    return device.type == "cuda" and cfg.method_args["precision"] == "auto" and not cfg.method_args["sal"]


def train_step(model: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               batch: dict[str, Tensor], method: Any, clip: float, amp: bool, gen: torch.Generator
               ) -> tuple[Tensor, dict[str, Tensor]]:
    """One optimiser step on one batch already on the device: `step_loss` (under fp16 autocast when `amp`), the
    scaled backward, clipping at total norm `clip` (0 = none), the step."""
    from repro.papers.cfaug.losses import step_loss

    with torch.autocast(batch["x"].device.type, dtype=torch.float16, enabled=amp):
        loss, parts = step_loss(model, batch, method, gen)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if clip:
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    scaler.step(opt)
    scaler.update()
    return loss, parts


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, batches: DataLoader,
                cfg: RunConfig, device: torch.device, gen: torch.Generator) -> dict[str, float]:
    """One pass over the training set; the mean loss and its parts per batch."""
    method, clip, amp = method_of(cfg), cfg.method_args["grad_clip"], uses_amp(cfg, device)
    model.train()
    sums: dict[str, Tensor] = {}
    n = 0
    for batch in batches:
        loss, parts = train_step(model, opt, scaler, _on(batch, device), method, clip, amp, gen)
        for k, v in {"loss": loss, **parts}.items():
            sums[k] = sums.get(k, 0) + torch.as_tensor(v, device=device).detach().float()
        n += 1
    out = {k: (v / max(n, 1)).item() for k, v in sums.items()}
    if not math.isfinite(out.get("loss", 0.0)):
        raise NonFiniteLoss(f"non-finite training loss: {out}")
    return out


@torch.no_grad()
def logits_on(model: nn.Module, batches: DataLoader, device: torch.device) -> tuple[Tensor, Tensor]:
    """Logits and labels of a whole evaluation set in eval mode, on the CPU (the model's mode is restored)."""
    was = model.training
    model.eval()
    out, ys = [], []
    for batch in batches:
        out.append(model(batch["x"].to(device, non_blocking=True))[0].float().cpu())
        ys.append(batch["y"])
    model.train(was)
    return torch.cat(out), torch.cat(ys)


def split_metrics(logits: Tensor, y: Tensor, metric: str, auc_scores: str) -> dict[str, float]:
    """The selection/report metric (accuracy %, or CCT macro AUC %, §7) and the CE on one set."""
    from repro.papers.cfaug.metrics import accuracy, macro_auc

    value = accuracy(logits, y) if metric == "accuracy" else macro_auc(logits, y, scores=auc_scores)
    return {metric: value, "ce": F.cross_entropy(logits, y).item()}


def _model(cfg: RunConfig, source: dict[str, Any], device: torch.device) -> nn.Module:
    args = dict(cfg.model_args)
    if cfg.model == "bit_r50x1" and args.get("init") == "bit_s":
        from repro.papers.cfaug.model_bit import bit_s_path

        args["weights"] = source.get("weights") or str(bit_s_path(source["root"]))
    return build_model(cfg.model, **args).to(device)


def _data(record: RunRecord) -> tuple[Any, dict[str, Any]]:
    from repro.papers.cfaug.data import load_cfaug
    from repro.papers.cfaug.sources import run_source

    source = run_source(record)
    cfg, d = record.config, record.config.data
    data = load_cfaug(cfg.dataset, Path(source["root"]), size=d["size"], cagan=d["cagan"],
                      limits=d.get("limits"), seed=LIMIT_SEED, preproc=d["preproc"],
                      data_ratio=d.get("data_ratio", 1.0), fg_mask=d.get("fg_mask", "code"))
    return data, source


def train_cfaug_run(record: RunRecord, device: torch.device, emit: Events, profile: str) -> dict[str, Any]:
    """Train (or resume) one run to completion and write its records."""
    cfg, args = record.config, record.config.method_args
    seed_everything(cfg.seed)
    data, source = _data(record)
    model = _model(cfg, source, device)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, args["schedule"])
    scaler = torch.amp.GradScaler(device.type, enabled=uses_amp(cfg, device))
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1_000_003)
    metric = cfg.metrics[0]
    best: dict[str, Any] = {"epoch": -1, "value": -math.inf, "metrics": {}}
    start = 0
    ckpt = resume(record, device, model=model, optimizer=opt, scheduler=sched, scaler=scaler)
    if ckpt is not None:
        gen.set_state(ckpt["gen"])
        best, start = ckpt["best"], ckpt["epoch"] + 1
    atomic_write_json(record.path("provenance.json"), provenance(
        device=device_name(device), profile=profile, run_key=record.key, synthetic_data=source["synthetic"],
        amp=uses_amp(cfg, device)))
    record.log(f"{'resuming at' if start else 'starting'} epoch {start} on {device_name(device)}")
    emit({"event": "start", "key": record.key, "epoch": start, "epochs": cfg.epochs})
    workers = args["workers"]
    evals = {k: loader(ds, args["eval_batch"], workers, device, None) for k, ds in data.evals.items()}
    t_run = time.perf_counter()
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        losses = train_epoch(model, opt, scaler, train_loader(data, cfg, device, epoch), cfg, device, gen)
        logits = {k: logits_on(model, b, device) for k, b in evals.items()}
        metrics = {k: split_metrics(z, y, metric, args["auc_scores"]) for k, (z, y) in logits.items()}
        if metrics["val"][metric] > best["value"]:  # strictly greater: the first maximum wins (§6.5)
            best = {"epoch": epoch, "value": metrics["val"][metric], "metrics": metrics}
            atomic_write(record.path("best.pt"), lambda f: torch.save(model.state_dict(), f))
            preds = {k: {"logits": z, "labels": y} for k, (z, y) in logits.items()}
            atomic_write(record.path("predictions.pt"), lambda f: torch.save(preds, f))
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(metrics["val"]["ce"])
        else:
            sched.step()
        state = {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "scaler": scaler.state_dict(), "gen": gen.get_state(),
                 "best": best}
        atomic_write(record.path("last.pt"), lambda f: torch.save(state, f))
        with open(record.path("metrics.jsonl"), "a") as log:
            log.write(json.dumps({"key": record.key, "epoch": epoch, "lr": lr, **losses, "sets": metrics,
                                  "seconds": round(time.perf_counter() - t0, 4)}) + "\n")
        emit({"event": "epoch", "key": record.key, "epoch": epoch + 1, "epochs": cfg.epochs})
    result = {"key": record.key, "best_epoch": best["epoch"], "best": best["metrics"], "metric": metric,
              "details": data.details, "synthetic_data": source["synthetic"], "amp": uses_amp(cfg, device),
              "seconds": round(time.perf_counter() - t_run, 2), "device": device_name(device)}
    return finish(record, result, emit)
