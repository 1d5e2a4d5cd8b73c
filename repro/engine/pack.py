"""The job of runs of one architecture and recipe on resident tensors (actdiff, TAP), trained as one
`repro.packed.Pack` (one run: its model itself), each member with its own records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

from repro.config import RunConfig
from repro.data.registry import KEEP_LAST, TrainData
from repro.engine.evaluate import evaluate_members, metric_options, save_predictions, stack_members
from repro.engine.loop import Best, Job
from repro.engine.recipe import build_optimizer
from repro.engine.step import MemberMeans, Objective, Step, resident_batches, run_epoch
from repro.methods import build_pack_objective
from repro.models import build_model
from repro.papers import load_all
from repro.runs.prepared import run_prepared_root
from repro.runs.store import RunRecord
from repro.seeding import seed_everything


@dataclass
class Member:
    """One run of a pack: its data, model (before packing) and optimiser."""

    data: TrainData
    model: nn.Module
    opt: torch.optim.Optimizer


class PackJob(Job):
    """Runs of one architecture and recipe (actdiff, TAP) on resident tensors, trained as one `repro.packed.Pack`
    (one run: its model itself), each member built exactly as when it trains alone; `build_data` makes a member's
    `TrainData` (`repro.data.registry.build_dataset`). `objective`, if given, replaces the one the configs'
    penalty specs build (a method with an objective of its own on these tensors: `(model, x, y, mask, generators)`
    -> loss, parts); its parts are all the run's."""

    def __init__(self, records: list[RunRecord], device: torch.device, build_data: Callable[..., TrainData],
                 objective: Objective | None = None):
        self.records, self.device = records, device
        cfg: RunConfig = records[0].config
        self.cfg, self.epochs, self.selection = cfg, cfg.epochs, cfg.selection
        self.members, self.gens = [], []
        load_all()  # the models, datasets and penalties the configs name
        self.keep_last = cfg.dataset in KEEP_LAST  # a later stage continues from these runs' last.pt
        for r in records:
            c = r.config
            seed_everything(c.seed)
            data = build_data(c.dataset, c.data, c.seed, device, prepared_root=run_prepared_root(r))
            model = build_model(c.model, **c.model_args).to(device)
            self.members.append(Member(data, model, build_optimizer(model, c)))
            self.gens.append(torch.Generator(device=device).manual_seed(c.seed + 1_000_003))
        specs = [r.config.method_args.get("objective", {}) for r in records]
        self.objective = objective or build_pack_objective(specs, cfg.method_args.get("ce_weight"))
        self.own = [None if objective else {"loss", "ce", *(k for k, v in spec.items() if float(v["weight"]) != 0)}
                    for spec in specs]
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
        self.step = Step(self.net, self.objective, self.opt)
        self.train = tuple(stack_members([getattr(d, k) for d in self.datas]) for k in ("x", "y", "mask"))

    def states(self) -> list[dict[str, Any]]:
        if self.net is None:  # before `ready`: the members as built
            return [{"model": m.model.state_dict(), "optimizer": m.opt.state_dict()} for m in self.members]
        models, opts = _states(self.net, self.opt, len(self.members))
        return [{"model": m, "optimizer": o} for m, o in zip(models, opts)]

    def train_epoch(self, epoch: int) -> list[dict[str, Any]]:
        batches = resident_batches(self.train, self.datas[0].batch, self.cfg.batch_size, self.gens,
                                   self.datas[0].augment)
        losses = run_epoch(self.step, batches, MemberMeans(len(self.records), self.device))
        own = self.own  # a pack's zero-weight terms are not a run's
        return [{k: v for k, v in loss.items() if own[i] is None or k in own[i]} for i, loss in enumerate(losses)]

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


