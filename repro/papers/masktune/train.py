"""MaskTune runs (masktune spec §0, §5): the ERM stage and the finetune stage, each a run in the store.

An `erm` run trains for `epochs` with the dataset's optimiser, weight decay and (D-1) per-epoch MultiStepLR,
keeps `best.pt` (first highest val accuracy) and `last.pt` (weights, optimiser and scheduler state, RNG:
also the per-epoch resume point), and stores best_erm's logits on val and every test set.

A `masktune` or `randmask` run names its ERM run by config: it trains that run first if it is not done,
then masks the training images with best_erm (cached, `repro.papers.masktune.masks`) or cuts random squares out
on the fly (RandMask), loads last_erm with its optimiser state and trains exactly one epoch at the lr in
force, without a scheduler step (§5.3); `rounds` > 1 repeats mask + finetune from the finetuned model.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.config import RunConfig
from repro.data.image_sets import ImageDataset, ImageSplit
from repro.engine import NonFiniteLoss, build_optimizer, load_weights
from repro.papers.masktune import datasets
from repro.papers.masktune.feed import Feeder
from repro.models import build_model
from repro.provenance import device_name, provenance
from repro.runs.epochs import finish, resume
from repro.runs.store import Claim, RunRecord, RunStore, atomic_write, atomic_write_json
from repro.seeding import seed_everything

Events = Callable[[dict[str, Any]], None]


def erm_config(cfg: RunConfig) -> RunConfig:
    """The ERM run a finetune run starts from: the same config without the finetune settings."""
    args = {k: v for k, v in cfg.method_args.items() if k in ERM_ARGS}
    return cfg.replace(method="erm", method_args=args)


ERM_ARGS = ("trainer", "milestones", "gamma", "lr_schedule", "workers")


def _model(cfg: RunConfig, device: torch.device, pretrained: bool = True) -> nn.Module:
    args = dict(cfg.model_args)
    if not pretrained and "init" in args:
        args["init"] = "random"  # the weights are loaded from a checkpoint next
    return build_model(cfg.model, **args).to(device)


def _scheduler(cfg: RunConfig, opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.MultiStepLR:
    a = cfg.method_args
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(a.get("milestones", [])), gamma=a.get("gamma", 1.0))


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, feeder: Feeder, split: ImageSplit,
                gen: torch.Generator, corrupt: Callable[[Tensor, torch.Generator], Tensor] | None = None
                ) -> dict[str, float]:
    """One shuffled pass in train mode (BN batch statistics); `corrupt` edits each augmented batch (RandMask)."""
    model.train()
    loss_sum = torch.zeros((), device=feeder.device)
    correct = torch.zeros((), device=feeder.device)
    for x, y in feeder.batches(split, "train", gen):
        if corrupt is not None:
            x = corrupt(x, gen)
        logits = model(x)[0]
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
    n = len(split)
    out = {"loss": (loss_sum / n).item(), "train_accuracy": 100 * (correct / n).item()}
    if not math.isfinite(out["loss"]):
        raise NonFiniteLoss(f"non-finite training loss: {out}")
    return out


@torch.no_grad()
def split_logits(model: nn.Module, feeder: Feeder, split: ImageSplit, gen: torch.Generator) -> Tensor:
    """The model's logits on a split in eval mode (the model's mode is restored), on the CPU."""
    was = model.training
    model.eval()
    out = torch.cat([model(x)[0].float().cpu() for x, _ in feeder.batches(split, "eval", gen)])
    model.train(was)
    return out


def split_metrics(logits: Tensor, split: ImageSplit, batch_size: int) -> dict[str, Any]:
    """Accuracy (%) exact per sample, the code's per-batch mean (D-16), and group metrics where the split
    has groups (test sets only, §7.9)."""
    from repro.metrics.groups import group_accuracies, per_batch_accuracy

    pred, y = logits.argmax(1), torch.from_numpy(split.labels)
    out: dict[str, Any] = {"accuracy": 100 * (pred == y).double().mean().item(),
                           "accuracy_code": per_batch_accuracy(pred, y, batch_size)}
    if split.groups is not None:
        out |= group_accuracies(pred, y, torch.from_numpy(split.groups))
    return out


def evaluate(model: nn.Module, ds: ImageDataset, feeder: Feeder, gen: torch.Generator
             ) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Metrics and logits on val and every test set."""
    logits = {k: split_logits(model, feeder, ds.splits[k], gen) for k in ["val", *ds.tests]}
    return {k: split_metrics(v, ds.splits[k], feeder.batch_size) for k, v in logits.items()}, logits


def _save_predictions(record: RunRecord, name: str, logits: dict[str, Tensor], ds: ImageDataset) -> None:
    out = {k: {"logits": v, "labels": torch.from_numpy(ds.splits[k].labels)} for k, v in logits.items()}
    atomic_write(record.path(name), lambda f: torch.save(out, f))


def _rng(gen: torch.Generator) -> dict[str, Any]:
    return {"gen": gen.get_state(), "torch": torch.get_rng_state()}


def _context(record: RunRecord, device: torch.device) -> tuple[RunConfig, ImageDataset, Feeder, torch.Generator]:
    cfg = record.config
    seed_everything(cfg.seed)
    ds = datasets.load(cfg.data, cfg.seed, record.dir.parents[1] / "prepared")
    feeder = Feeder(ds.transforms, device, cfg.batch_size, cfg.method_args.get("workers", 0))
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1_000_003)
    return cfg, ds, feeder, gen


def train_erm(record: RunRecord, device: torch.device, emit: Events, profile: str) -> dict[str, Any]:
    """Train (or resume) an ERM run to completion and write its records."""
    cfg, ds, feeder, gen = _context(record, device)
    model = _model(cfg, device)
    opt = build_optimizer(model, cfg)
    sched = _scheduler(cfg, opt)
    best = {"epoch": -1, "val_accuracy": -math.inf}
    start = 0
    ckpt = resume(record, device, model=model, optimizer=opt, scheduler=sched)
    if ckpt is not None:
        gen.set_state(ckpt["rng"]["gen"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        best, start = ckpt["best"], ckpt["epoch"] + 1
    atomic_write_json(record.path("provenance.json"), provenance(device=device_name(device), profile=profile,
                                                                 run_key=record.key))
    record.log(f"{'resuming at' if start else 'starting'} ERM epoch {start} on {device_name(device)}")
    emit({"event": "start", "key": record.key, "epoch": start, "epochs": cfg.epochs})
    constant = cfg.method_args.get("lr_schedule", "paper") == "code_constant"
    t_run = time.perf_counter()
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        losses = train_epoch(model, opt, feeder, ds.splits["train"], gen)
        val = split_metrics(split_logits(model, feeder, ds.splits["val"], gen), ds.splits["val"], cfg.batch_size)
        if val["accuracy"] > best["val_accuracy"]:  # strictly greater: the first maximum wins (§5.1)
            best = {"epoch": epoch, "val_accuracy": val["accuracy"]}
            atomic_write(record.path("best.pt"), lambda f: torch.save(model.state_dict(), f))
        if not constant:
            sched.step()  # D-1 paper: per epoch, after validation
        state = {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "rng": _rng(gen), "best": best}
        atomic_write(record.path("last.pt"), lambda f: torch.save(state, f))
        with open(record.path("metrics.jsonl"), "a") as log:
            log.write(json.dumps({"key": record.key, "epoch": epoch, "lr": lr, **losses,
                                  "val_accuracy": val["accuracy"], "val_accuracy_code": val["accuracy_code"],
                                  "seconds": round(time.perf_counter() - t0, 4)}) + "\n")
        emit({"event": "epoch", "key": record.key, "epoch": epoch + 1, "epochs": cfg.epochs})
    model.load_state_dict(torch.load(record.path("best.pt"), map_location=device, weights_only=True))
    metrics, logits = evaluate(model, ds, feeder, gen)
    _save_predictions(record, "predictions.pt", logits, ds)
    result = {"key": record.key, "stage": "erm", "best_epoch": best["epoch"], "best": metrics,
              "final_lr": opt.param_groups[0]["lr"], "epochs": cfg.epochs, "details": ds.details,
              "seconds": round(time.perf_counter() - t_run, 2), "device": device_name(device)}
    return finish(record, result, emit)


def ensure_erm(record: RunRecord, device: torch.device, emit: Events, profile: str) -> RunRecord:
    """The finetune run's ERM run, trained here first unless it is done (another process training it is
    waited for)."""
    erm = RunStore(record.dir.parents[1]).record(erm_config(record.config))
    while erm.state() != "done":
        with Claim(erm) as claim:
            if claim.acquire():
                if erm.state() != "done":
                    train_erm(erm, device, emit, profile)
                continue
        time.sleep(2.0)
    return erm


def train_finetune(record: RunRecord, device: torch.device, emit: Events, profile: str) -> dict[str, Any]:
    """A MaskTune or RandMask run: ERM (reused), masking (cached) or cutouts, one finetune epoch per round."""
    from repro.papers.masktune import masks, randmask

    erm = ensure_erm(record, device, emit, profile)
    cfg, ds, feeder, gen = _context(record, device)
    args = cfg.method_args
    atomic_write_json(record.path("provenance.json"), provenance(device=device_name(device), profile=profile,
                                                                 run_key=record.key, erm_run=erm.key))
    emit({"event": "start", "key": record.key, "epoch": 0, "epochs": args.get("rounds", 1)})
    t_run = time.perf_counter()
    model = _model(cfg, device, pretrained=False)
    opt = build_optimizer(model, cfg)
    ckpt = torch.load(erm.path("last.pt"), map_location=device, weights_only=False)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])  # the lr in force and the momentum / Adam moments (D-2, D-3)
    source = load_weights(erm, "best", device)  # best_erm makes the first masks (§5.4)
    rounds, history, train = args.get("rounds", 1), [], ds.splits["train"]
    for r in range(rounds):
        if cfg.method == "randmask":
            split, corrupt, stats = train, randmask.cutout, {}
        else:
            base = train if args.get("accumulative") else ds.splits["train"]
            cache = masks.cache_dir(record, erm.key if r == 0 else f"{record.key}-round{r}", args)
            split, stats = masks.masked_split(source, base, ds, feeder, cache, args, gen)
            corrupt = None
        lr = opt.param_groups[0]["lr"]
        losses = train_epoch(model, opt, feeder, split, gen, corrupt)
        val = split_metrics(split_logits(model, feeder, ds.splits["val"], gen), ds.splits["val"], cfg.batch_size)
        history.append({"round": r + 1, "lr": lr, **losses, "val_accuracy": val["accuracy"], "masking": stats})
        with open(record.path("metrics.jsonl"), "a") as log:
            log.write(json.dumps({"key": record.key, "epoch": r, **history[-1]}) + "\n")
        train, source = split, model  # the next round masks with the finetuned model (§5.5)
        emit({"event": "epoch", "key": record.key, "epoch": r + 1, "epochs": rounds})
    atomic_write(record.path("finetuned.pt"), lambda f: torch.save(model.state_dict(), f))
    metrics, logits = evaluate(model, ds, feeder, gen)
    _save_predictions(record, "predictions.pt", logits, ds)
    result = {"key": record.key, "stage": cfg.method, "erm_run": erm.key, "final": metrics, "rounds": history,
              "finetune_lr": history[0]["lr"], "details": ds.details,
              "seconds": round(time.perf_counter() - t_run, 2), "device": device_name(device)}
    if args.get("selective"):
        result["selective"] = selective(erm, logits, args.get("selective_score", "code"), args["selective"],
                                        args.get("selective_argmax", "product"))
    return finish(record, result, emit)


def selective(erm: RunRecord, final_logits: dict[str, Tensor], score: str, coverages: list[float],
              argmax: str = "product") -> dict[str, list[dict[str, float]]]:
    """§6.3 from best_erm x finetuned ("masktune") and best_erm alone ("sr"), val thresholds, test metrics."""
    from repro.papers.masktune.selective import selective_metrics, selective_scores, sr_scores

    init = torch.load(erm.path("predictions.pt"), weights_only=True)
    p0 = {k: init[k]["logits"].softmax(1) for k in ("val", "test")}
    p1 = {k: final_logits[k].softmax(1) for k in ("val", "test")}
    labels = init["test"]["labels"]
    out = {}
    for name, (val, test) in {"masktune": (selective_scores(p0["val"], p1["val"], score, argmax),
                                           selective_scores(p0["test"], p1["test"], score, argmax)),
                              "sr": (sr_scores(p0["val"]), sr_scores(p0["test"]))}.items():
        out[name] = selective_metrics(val[0], test[0], test[1], labels, tuple(coverages))
    return out


def train_masktune_run(record: RunRecord, device: torch.device, emit: Events, profile: str) -> dict[str, Any]:
    """Entry point from the engine for `trainer: masktune` runs."""
    if record.config.method == "erm":
        return train_erm(record, device, emit, profile)
    return train_finetune(record, device, emit, profile)
