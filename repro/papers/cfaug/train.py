"""One cfaug run (spec §5-6) as a job of the one loop (`repro.engine.fit`): its feed (batches decoded by DataLoader
workers), its method (the registered "cfaug" objective, `repro.papers.cfaug.losses.CfaugObjective`, composing the
run's registered terms), its recipe (the dataset's optimiser and per-epoch schedule, gradient clipping C-11, fp16
AMP where the spec says C-10: all applied by the engine's `Step`), every evaluation set after every epoch, and the
first best-validation epoch as the selection (§6.5).

Besides the run-folder contract's files, `predictions.pt` holds the selected epoch's logits on every evaluation
set, and the checkpoint also holds the scheduler and the AMP scaler.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from repro.config import RunConfig
from repro.engine import BatchMeans, Best, Job, Schedule, Step, batch_logits, build_optimizer, run_epoch
from repro.methods import method
from repro.models import build_model
from repro.papers.cfaug.losses import CfaugMethod  # registers the "cfaug" method and the paper's terms
from repro.runs import record as contract
from repro.runs.store import RunRecord, atomic_write
from repro.seeding import seed_everything, seed_worker

LIMIT_SEED = 0  # reduced profiles: the same subsets for every run


def method_of(cfg: RunConfig) -> CfaugMethod:
    """The run's objective settings as `CfaugMethod` (the method_args that are its fields, `terms` included)."""
    names = {f.name for f in fields(CfaugMethod)}
    return CfaugMethod(**{k: v for k, v in cfg.method_args.items() if k in names})


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


def train_batches(batches: DataLoader, device: torch.device, gen: torch.Generator
                  ) -> Iterator[tuple[dict[str, Tensor], torch.Generator]]:
    """The objective's arguments per training batch: the batch on the device and the run's generator."""
    for batch in batches:
        yield _on(batch, device), gen


def eval_batches(batches: DataLoader) -> Iterator[tuple[Tensor, Tensor]]:
    """(x, y) of an evaluation set's batches."""
    for batch in batches:
        yield batch["x"], batch["y"]


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


class CfaugJob(Job):
    """One cfaug run: selection on the val set's metric (strictly greater: the first maximum wins, §6.5)."""

    def __init__(self, record: RunRecord, device: torch.device):
        cfg, args = record.config, record.config.method_args
        self.records, self.device, self.cfg, self.epochs = [record], device, cfg, cfg.epochs
        seed_everything(cfg.seed)
        self.data, self.source = _data(record)
        self.model = _model(cfg, self.source, device)
        self.opt = build_optimizer(self.model, cfg)
        self.sched = Schedule(self.opt, args["schedule"])
        objective = method(args["trainer"])(method_of(cfg))
        self.step = Step(self.model, objective, self.opt, amp=uses_amp(cfg, device), clip=args["grad_clip"])
        self.gens = [torch.Generator(device=device).manual_seed(cfg.seed + 1_000_003)]
        self.metric = cfg.metrics[0]
        self.selection = f"val/{self.metric}"
        self.evals = {k: loader(ds, args["eval_batch"], args["workers"], device, None)
                      for k, ds in self.data.evals.items()}
        self.logits: dict[str, tuple[Tensor, Tensor]] = {}

    def states(self) -> list[dict[str, Any]]:
        return [{"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                 "scheduler": self.sched.state_dict(), "scaler": self.step.scaler.state_dict()}]

    def load(self, member: int, checkpoint: dict[str, Any]) -> None:
        for name, obj in (("model", self.model), ("optimizer", self.opt), ("scheduler", self.sched),
                          ("scaler", self.step.scaler)):
            obj.load_state_dict(checkpoint[name])

    def train_epoch(self, epoch: int) -> list[dict[str, Any]]:
        lr = self.opt.param_groups[0]["lr"]
        batches = train_batches(train_loader(self.data, self.cfg, self.device, epoch), self.device, self.gens[0])
        self.model.train()
        return [{"lr": lr, **run_epoch(self.step, batches, BatchMeans(self.device))[0]}]

    def evaluate(self, epoch: int, last: bool, bests: list[Best]) -> list[dict[str, dict[str, float]]]:
        self.logits = {k: batch_logits(self.model, eval_batches(b), self.device) for k, b in self.evals.items()}
        scores = self.cfg.method_args["auc_scores"]
        return [{k: split_metrics(z, y, self.metric, scores) for k, (z, y) in self.logits.items()}]

    def selected(self, member: int, epoch: int) -> None:
        preds = {k: {"logits": z, "labels": y} for k, (z, y) in self.logits.items()}
        atomic_write(self.records[0].path(contract.PREDICTIONS), lambda f: torch.save(preds, f))

    def end_epoch(self, epoch: int, metrics: list[dict[str, dict[str, float]]]) -> None:
        self.sched.end_epoch(metrics[0])

    def finish(self, member: int, best: Best, final: dict[str, dict[str, float]]) -> dict[str, Any]:
        return {"metric": self.metric, "details": self.data.details, "synthetic_data": self.source["synthetic"],
                "amp": uses_amp(self.cfg, self.device)}

    def provenance(self, member: int) -> dict[str, Any]:
        return {"synthetic_data": self.source["synthetic"], "amp": uses_amp(self.cfg, self.device)}


def cfaug_job(record: RunRecord, device: torch.device, stage: Callable[[RunRecord], Any]) -> CfaugJob:
    """The paper registry's job factory (`repro.papers.Paper.job`)."""
    return CfaugJob(record, device)
