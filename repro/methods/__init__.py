"""Training objectives: cross-entropy plus weighted penalties, each penalty one module.

A penalty is a small class registered by name. `prepare(ctx)` runs before the main forward pass
(actdiff's masked pass must come first, spec actdiff §4.7); `__call__(ctx)` returns the unweighted term.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.methods.masking import outside_mask, shuffle_outside

PENALTIES: dict[str, type[Penalty]] = {}


def register_penalty(name: str) -> Callable[[type[Penalty]], type[Penalty]]:
    def deco(cls: type[Penalty]) -> type[Penalty]:
        PENALTIES[name] = cls
        return cls

    return deco


@dataclass
class StepContext:
    """One training batch as the penalties see it."""

    model: nn.Module
    x: Tensor
    y: Tensor
    mask: Tensor
    generator: torch.Generator
    logits: Tensor | None = None
    recon: Tensor | None = None
    activations: list[Tensor] = field(default_factory=list)
    _shuffled: Tensor | None = None

    @property
    def outside(self) -> Tensor:
        return outside_mask(self.mask)

    def shuffled(self) -> Tensor:
        """x with its pixels outside the ROI permuted per sample (drawn once per step)."""
        if self._shuffled is None:
            self._shuffled = shuffle_outside(self.x.detach(), self.outside, self.generator)
        return self._shuffled


class Penalty:
    """Base class: a differentiable regulariser added to the cross-entropy."""

    needs_input_grad = False
    needs_activations = False

    def prepare(self, ctx: StepContext) -> None:
        """Work that must happen before the main forward pass."""

    def __call__(self, ctx: StepContext) -> Tensor:
        raise NotImplementedError


class Objective:
    """CE(logits, y) + sum of weight * penalty; returns the total and its named parts."""

    def __init__(self, penalties: dict[str, tuple[float, Penalty]], ce_weight: Tensor | None = None):
        self.penalties = {k: v for k, v in penalties.items() if v[0] != 0}
        self.ce_weight = ce_weight

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, mask: Tensor,
                 generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        terms = [p for _, p in self.penalties.values()]
        if any(p.needs_input_grad for p in terms):
            x = x.detach().requires_grad_(True)
        ctx = StepContext(model, x, y, mask, generator)
        for p in terms:
            p.prepare(ctx)
        record = any(p.needs_activations for p in terms)
        model.record = record
        ctx.logits, ctx.recon = model(x)
        ctx.activations = model.activations if record else []
        model.record = False
        weight = None if self.ce_weight is None else self.ce_weight.to(ctx.logits.device)
        total = F.cross_entropy(ctx.logits, y, weight=weight)
        parts = {"ce": total.detach()}
        for name, (weight, penalty) in self.penalties.items():
            term = weight * penalty(ctx)
            parts[name] = term.detach()
            total = total + term
        return total, parts


def build_objective(spec: dict[str, Any], ce_weight: list[float] | None = None) -> Objective:
    """Build an objective from `{penalty_name: {"weight": w, **kwargs}}` and optional class weights
    for the cross-entropy (PyTorch's weighted mean)."""
    penalties = {}
    for name, args in spec.items():
        args = dict(args)
        weight = float(args.pop("weight"))
        if name not in PENALTIES:
            raise KeyError(f"unknown penalty {name!r}; known: {', '.join(sorted(PENALTIES))}")
        penalties[name] = (weight, PENALTIES[name](**args))
    return Objective(penalties, None if ce_weight is None else torch.tensor(ce_weight, dtype=torch.float32))


from repro.methods import actdiff, gradmask, rbr, reconstruction, rrr, tap  # noqa: E402,F401
