"""A run's recipe: its optimiser (adam, sgd, rmsprop) and its lr schedule (MultiStepLR, ReduceLROnPlateau on the
val CE, or constant), stepped once per epoch after the evaluation."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from repro.config import RunConfig


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



class Schedule:
    """The lr schedule of a recipe, stepped once per epoch (`end_epoch`, after the evaluation): `spec` =
    {"kind": "multistep", "milestones": [...], "gamma": g} | {"kind": "plateau", "factor", "patience",
    "threshold"} (ReduceLROnPlateau, mode min, on the val CE) | {"kind": "constant"} (no scheduler)."""

    def __init__(self, opt: torch.optim.Optimizer, spec: dict[str, Any]):
        self.kind = spec["kind"]
        self.sched: Any = None
        if self.kind == "multistep":
            self.sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(spec["milestones"]), spec["gamma"])
        elif self.kind == "plateau":
            self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=spec["factor"], patience=spec["patience"], threshold=spec["threshold"])
        elif self.kind != "constant":
            raise ValueError(f"unknown lr schedule {self.kind!r}; known: multistep, plateau, constant")

    def end_epoch(self, metrics: dict[str, dict[str, float]]) -> None:
        """One per-epoch step: a plateau schedule on the epoch's val CE."""
        if self.kind == "plateau":
            self.sched.step(metrics["val"]["ce"])
        elif self.sched is not None:
            self.sched.step()

    def state_dict(self) -> dict[str, Any]:
        return self.sched.state_dict() if self.sched is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.sched is not None:
            self.sched.load_state_dict(state)
