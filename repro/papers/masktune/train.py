"""MaskTune runs (masktune spec §0, §5) as jobs of the one loop (`repro.engine.fit`): the ERM stage and the
finetune stage, each a run in the store.

An `erm` run trains for `epochs` with the dataset's optimiser, weight decay and (D-1) per-epoch MultiStepLR,
selects the first highest val accuracy (`best.pt`), keeps its final checkpoint as `last.pt` (weights, optimiser
and scheduler state) and stores best_erm's logits on val and every test set.

A `masktune` or `randmask` run names its ERM run by config: that run is trained first (through the same loop)
if it is not done; then the training images are masked with best_erm (cached, `repro.papers.masktune.masks`) or cut
with random squares on the fly (RandMask), last_erm is loaded with its optimiser state and trained for exactly
one epoch at the lr in force, without a scheduler step (§5.3); `rounds` > 1 repeats mask + finetune from the
finetuned model. A finetune run is not resumed mid-way: it restarts from last_erm (its masks stay cached).

Each method is one registered job (`repro.methods.register_method`): `erm` and `masktune` here, `randmask` in
`repro.papers.masktune.randmask`. They supply the objective (CE, or CE of cut-out images), the feed
(`repro.papers.masktune.feed`) and the round's training split; the engine's `Step` and `run_epoch` train.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.config import RunConfig
from repro.data.image_sets import ImageDataset, ImageSplit
from repro.engine import Best, Job, Schedule, Step, batch_logits, build_optimizer, load_weights, run_epoch
from repro.engine.step import Objective
from repro.methods import method, register_method
from repro.papers.masktune import datasets
from repro.papers.masktune.feed import Feeder
from repro.models import build_model
from repro.runs import record as contract
from repro.runs.prepared import run_prepared_root, runs_dir_of
from repro.runs.launch import ensure_done
from repro.runs.store import RunRecord, RunStore, atomic_write
from repro.seeding import seed_everything

Stage = Callable[[RunRecord], Any]


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


def _schedule(cfg: RunConfig) -> dict[str, Any]:
    """D-1: per-epoch MultiStepLR ("paper"), or the code's constant lr ("code_constant")."""
    a = cfg.method_args
    if a.get("lr_schedule", "paper") == "code_constant":
        return {"kind": "constant"}
    return {"kind": "multistep", "milestones": list(a.get("milestones", [])), "gamma": a.get("gamma", 1.0)}


def cross_entropy(model: nn.Module, x: Tensor, y: Tensor, gen: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
    """ERM's and MaskTune's objective: the batch's mean CE; its part "correct" counts the right predictions."""
    logits = model(x)[0]
    return F.cross_entropy(logits, y), {"correct": (logits.detach().argmax(1) == y).sum()}


class SampleMeans:
    """The epoch's mean loss over its `n` samples, its training accuracy (%) where the objective counts "correct",
    and the sample mean of each other part (a penalty objective's terms)."""

    def __init__(self, device: torch.device, n: int):
        self.n = n
        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device)
        self.counted = False
        self.parts: dict[str, Tensor] = {}

    def add(self, loss: Tensor, parts: dict[str, Tensor], batch: tuple[Any, ...]) -> None:
        rows = len(batch[1])
        self.loss += loss.detach() * rows
        for name, value in parts.items():
            if name == "correct":
                self.correct += value
                self.counted = True
            else:
                self.parts[name] = self.parts.get(name, 0) + value.detach().sum() * rows

    def result(self) -> list[dict[str, float]]:
        out = {"loss": (self.loss / self.n).item()}
        if self.counted:
            out["train_accuracy"] = 100 * (self.correct / self.n).item()
        return [out | {name: (value / self.n).item() for name, value in self.parts.items()}]


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, feeder: Feeder, split: ImageSplit,
                gen: torch.Generator, objective: Objective = cross_entropy) -> dict[str, float]:
    """One shuffled pass in train mode (BN batch statistics) through the engine's step: `objective(model, x, y,
    gen)` on each augmented batch."""
    model.train()
    batches = ((x, y, gen) for x, y in feeder.batches(split, "train", gen))
    return run_epoch(Step(model, objective, opt), batches, SampleMeans(feeder.device, len(split)))[0]


def split_logits(model: nn.Module, feeder: Feeder, split: ImageSplit, gen: torch.Generator) -> Tensor:
    """The model's logits on a split in eval mode (the model's mode is restored), on the CPU."""
    return batch_logits(model, feeder.batches(split, "eval", gen), feeder.device)[0]


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


def _context(record: RunRecord, device: torch.device) -> tuple[RunConfig, ImageDataset, Feeder, torch.Generator]:
    cfg = record.config
    seed_everything(cfg.seed)
    ds = datasets.load(cfg.data, cfg.seed, run_prepared_root(record))
    feeder = Feeder(ds.transforms, device, cfg.batch_size, cfg.method_args.get("workers", 0))
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1_000_003)
    return cfg, ds, feeder, gen


@register_method("erm")
class ErmJob(Job):
    """The ERM stage: selection on val accuracy (strictly greater: the first maximum wins, §5.1)."""

    selection = "val/accuracy"
    keep_last = True  # last_erm: the finetune stage continues from it
    objective: Objective = staticmethod(cross_entropy)  # (model, x, y, gen) -> loss, parts; the cross study's differ

    def __init__(self, record: RunRecord, device: torch.device, stage: Stage | None = None):
        self.records = [record]
        self.cfg, self.ds, self.feeder, gen = _context(record, device)
        self.gens, self.epochs = [gen], self.cfg.epochs
        self.model = _model(self.cfg, device)
        self.opt = build_optimizer(self.model, self.cfg)
        self.sched = Schedule(self.opt, _schedule(self.cfg))

    def states(self) -> list[dict[str, Any]]:
        return [{"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                 "scheduler": self.sched.state_dict()}]

    def load(self, member: int, checkpoint: dict[str, Any]) -> None:
        for name, obj in (("model", self.model), ("optimizer", self.opt), ("scheduler", self.sched)):
            obj.load_state_dict(checkpoint[name])

    def train_epoch(self, epoch: int) -> list[dict[str, Any]]:
        lr = self.opt.param_groups[0]["lr"]
        return [{"lr": lr, **train_epoch(self.model, self.opt, self.feeder, self.ds.splits["train"], self.gens[0],
                                         self.objective)}]

    def evaluate(self, epoch: int, last: bool, bests: list[Best]) -> list[dict[str, dict[str, float]]]:
        val = self.ds.splits["val"]
        return [{"val": split_metrics(split_logits(self.model, self.feeder, val, self.gens[0]), val,
                                      self.cfg.batch_size)}]

    def end_epoch(self, epoch: int, metrics: list[dict[str, dict[str, float]]]) -> None:
        self.sched.end_epoch(metrics[0])  # D-1 paper: per epoch, after validation

    def finish(self, member: int, best: Best, final: dict[str, dict[str, float]]) -> dict[str, Any]:
        """best_erm's metrics and logits on val and every test set."""
        record = self.records[0]
        final_lr = self.opt.param_groups[0]["lr"]
        self.model.load_state_dict(best.state)
        metrics, logits = evaluate(self.model, self.ds, self.feeder, self.gens[0])
        _save_predictions(record, contract.PREDICTIONS, logits, self.ds)
        return {"stage": "erm", "best": metrics, "final_lr": final_lr, "details": self.ds.details}


def ensure_erm(record: RunRecord, stage: Stage) -> RunRecord:
    """The finetune run's ERM run, trained here first (by `stage`) unless it is done (`ensure_done`)."""
    return ensure_done(RunStore(runs_dir_of(record)).record(erm_config(record.config)), stage)


class FinetuneJob(Job):
    """A finetune run (MaskTune, RandMask): ERM (reused), then one finetune epoch per round on the round's training
    split (`round_split`) with the method's `objective`; the last round is the selection."""

    selection = "final"
    resumable = False
    objective: Objective = staticmethod(cross_entropy)

    def __init__(self, record: RunRecord, device: torch.device, stage: Stage):
        self.erm = ensure_erm(record, stage)
        self.records, self.device = [record], device
        self.cfg, self.ds, self.feeder, gen = _context(record, device)
        self.gens, self.args = [gen], self.cfg.method_args
        self.epochs = self.args.get("rounds", 1)
        self.model = _model(self.cfg, device, pretrained=False)
        self.opt = build_optimizer(self.model, self.cfg)
        ckpt = torch.load(self.erm.path(contract.LAST), map_location=device, weights_only=False)
        self.model.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])  # the lr in force and the momentum / Adam moments (D-2, D-3)
        self.source = load_weights(self.erm, "best", device)  # best_erm makes the first masks (§5.4)
        self.train = self.ds.splits["train"]
        self.history: list[dict[str, Any]] = []

    def states(self) -> list[dict[str, Any]]:
        return [{"model": self.model.state_dict(), "optimizer": self.opt.state_dict()}]

    def round_split(self, epoch: int) -> tuple[ImageSplit, dict[str, Any]]:
        """The training split of round `epoch` and what making it measured."""
        raise NotImplementedError

    def train_epoch(self, epoch: int) -> list[dict[str, Any]]:
        split, stats = self.round_split(epoch)
        lr = self.opt.param_groups[0]["lr"]
        losses = train_epoch(self.model, self.opt, self.feeder, split, self.gens[0], self.objective)
        self.train, self.source = split, self.model  # the next round masks with the finetuned model (§5.5)
        self.history.append({"round": epoch + 1, "lr": lr, **losses, "masking": stats})
        return [self.history[-1]]

    def evaluate(self, epoch: int, last: bool, bests: list[Best]) -> list[dict[str, dict[str, float]]]:
        val = self.ds.splits["val"]
        metrics = split_metrics(split_logits(self.model, self.feeder, val, self.gens[0]), val, self.cfg.batch_size)
        self.history[-1]["val_accuracy"] = metrics["accuracy"]
        return [{"val": metrics}]

    def finish(self, member: int, best: Best, final: dict[str, dict[str, float]]) -> dict[str, Any]:
        """The finetuned model's metrics and logits on val and every test set, and the selective metrics."""
        record, args = self.records[0], self.args
        metrics, logits = evaluate(self.model, self.ds, self.feeder, self.gens[0])
        _save_predictions(record, contract.PREDICTIONS, logits, self.ds)
        result = {"stage": self.cfg.method, "erm_run": self.erm.key, "best": metrics, "final": metrics,
                  "rounds": self.history, "finetune_lr": self.history[0]["lr"], "details": self.ds.details}
        if args.get("selective"):
            result["selective"] = selective(self.erm, logits, args.get("selective_score", "code"), args["selective"],
                                            args.get("selective_argmax", "product"))
        return result

    def provenance(self, member: int) -> dict[str, Any]:
        return {"erm_run": self.erm.key}


@register_method("masktune")
class MaskTuneJob(FinetuneJob):
    """MaskTune (§5.4-5.5): each round trains on the training images masked by the round's source model (best_erm,
    then the finetuned model), masks cached."""

    def round_split(self, epoch: int) -> tuple[ImageSplit, dict[str, Any]]:
        from repro.papers.masktune import masks

        base = self.train if self.args.get("accumulative") else self.ds.splits["train"]
        source = self.erm.key if epoch == 0 else f"{self.records[0].key}-round{epoch}"
        cache = masks.cache_dir(self.records[0], source, self.args)
        return masks.masked_split(self.source, base, self.ds, self.feeder, cache, self.args, self.gens[0])


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


def masktune_job(record: RunRecord, device: torch.device, stage: Stage) -> Job:
    """The paper registry's job factory (`repro.papers.Paper.job`): the job its method registered (erm, masktune,
    randmask)."""
    return method(record.config.method)(record, device, stage)
