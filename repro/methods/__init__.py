"""Training methods, a leaf registry (it imports no paper; the papers register into it when loaded,
`repro.papers.load_all`): penalties added to the cross-entropy, and whole objectives of their own.

A method of any paper is one file and one registry entry. A penalty is a small class registered by name
(`register_penalty`), composed by `Objective` (actdiff, TAP, and any paper trained by `repro.engine.PackJob`); a
method with its own objective or stages (cfaug's augmented batches, MaskTune's erm / masktune / randmask) registers
by `register_method` and is looked up by its name (`method`). `prepare(ctx)` runs before the main forward pass
(actdiff's masked pass must come first, spec actdiff §4.7); `__call__(ctx)` returns the unweighted term per
sample, and `reduce` says how a run's batch turns it into the term: its `mean` or its `sum`.

The batch may hold several runs ("members") of one architecture trained together (`repro.packed`): member m
owns rows [m*B, (m+1)*B). Every reduction is then per member, and the total is the sum of the members' losses,
so each member's gradient is exactly its own. Members may differ in their penalties' weights (lambdas) and in
which `pure` penalties they have (`build_pack_objective`): a penalty a member lacks is computed for it too, with
weight 0.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PENALTIES: dict[str, type[Penalty]] = {}
METHODS: dict[str, Any] = {}
T = TypeVar("T")


def register_penalty(name: str) -> Callable[[type[Penalty]], type[Penalty]]:
    def deco(cls: type[Penalty]) -> type[Penalty]:
        PENALTIES[name] = cls
        return cls

    return deco


def register_method(name: str) -> Callable[[T], T]:
    """Register a method (a class or factory its paper's job builds the run's objective or stage from) by name."""
    def deco(entry: T) -> T:
        METHODS[name] = entry
        return entry

    return deco


def method(name: str) -> Any:
    """The registered method `name`; KeyError naming the known ones."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))} (the papers register "
                       "theirs when loaded: `repro.papers.load_all`)")
    return METHODS[name]


@dataclass
class StepContext:
    """One training batch as the penalties see it: `generators` holds one generator per member."""

    model: nn.Module
    x: Tensor
    y: Tensor
    mask: Tensor
    generators: list[torch.Generator]
    logits: Tensor | None = None
    recon: Tensor | None = None
    activations: list[Tensor] = field(default_factory=list)
    cache: dict[str, Tensor] = field(default_factory=dict)  # per-step values penalties share (actdiff's shuffle)

    @property
    def members(self) -> int:
        return len(self.generators)

    @property
    def outside(self) -> Tensor:
        """Pixels outside the ROI: every pixel where the mask is not exactly 1 (soft edges count as outside)."""
        return self.mask != 1

    def per_member(self, values: Tensor, reduce: str = "mean") -> Tensor:
        """Per-sample values (N,) -> one value per member (M,), by mean or sum over its rows."""
        v = values.reshape(self.members, -1)
        return v.mean(1) if reduce == "mean" else v.sum(1)


class Penalty:
    """Base class: a differentiable regulariser added to the cross-entropy, computed per sample."""

    needs_input_grad = False
    needs_activations = False
    reduce = "mean"  # how a run's batch of per-sample values becomes its term: "mean" or "sum"
    unpackable: str | None = None  # why runs with this term cannot train as a pack (`repro.packed`), if so
    pure = True  # computing it for a member that lacks it (weight 0) changes nothing of that member's training

    def prepare(self, ctx: StepContext) -> None:
        """Work that must happen before the main forward pass."""

    def around_step(self) -> AbstractContextManager[None]:
        """A context the whole step runs in (RBR's full influence: batch norm differentiable three times)."""
        return nullcontext()

    def __call__(self, ctx: StepContext) -> Tensor:
        raise NotImplementedError


def member_ce(ctx: StepContext, weight: Tensor | None = None) -> Tensor:
    """Each member's cross-entropy (M,): the mean over its rows, or PyTorch's weighted mean with class weights."""
    losses = F.cross_entropy(ctx.logits, ctx.y, reduction="none", weight=weight)
    if weight is None:
        return ctx.per_member(losses)
    return ctx.per_member(losses, "sum") / ctx.per_member(weight[ctx.y], "sum")


class Constant:
    """A constant CPU tensor (class or member weights) and its copies on other devices and dtypes, each made on
    first use: a copy in every training step would block the host (a synchronisation per batch on CUDA)."""

    def __init__(self, value: Tensor):
        self.value = value
        self._copies: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    def on(self, device: torch.device, dtype: torch.dtype | None = None) -> Tensor:
        key = (device, dtype or self.value.dtype)
        if key not in self._copies:
            self._copies[key] = self.value.to(device=key[0], dtype=key[1])
        return self._copies[key]


class Objective:
    """Per member: CE(logits, y) + sum of weight * penalty, a weight being one number or one per member (M,).
    Returns the sum of the members' totals (what is differentiated) and the named parts per member, (M,)."""

    def __init__(self, penalties: dict[str, tuple[float | Tensor, Penalty]], ce_weight: Tensor | None = None):
        self.penalties = {k: v for k, v in penalties.items() if bool(torch.as_tensor(v[0]).ne(0).any())}
        self.ce_weight = ce_weight
        self._ce = None if ce_weight is None else Constant(ce_weight)
        self._weights = {k: Constant(w) for k, (w, _) in self.penalties.items() if isinstance(w, Tensor)}

    @property
    def unpackable(self) -> str | None:
        """Why this objective cannot train a pack of runs, or None."""
        return next((p.unpackable for _, p in self.penalties.values() if p.unpackable), None)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, mask: Tensor,
                 generators: torch.Generator | list[torch.Generator]) -> tuple[Tensor, dict[str, Tensor]]:
        terms = [p for _, p in self.penalties.values()]
        with ExitStack() as stack:
            for p in terms:
                stack.enter_context(p.around_step())
            return self._step(model, x, y, mask, generators, terms)

    def _step(self, model: nn.Module, x: Tensor, y: Tensor, mask: Tensor,
              generators: torch.Generator | list[torch.Generator], terms: list[Penalty]
              ) -> tuple[Tensor, dict[str, Tensor]]:
        if any(p.needs_input_grad for p in terms):
            x = x.detach().requires_grad_(True)
        gens = [generators] if isinstance(generators, torch.Generator) else list(generators)
        ctx = StepContext(model, x, y, mask, gens)
        for p in terms:
            p.prepare(ctx)
        record = any(p.needs_activations for p in terms)
        model.record = record
        ctx.logits, ctx.recon = model(x)
        ctx.activations = model.activations if record else []
        model.record = False
        total = member_ce(ctx, None if self._ce is None else self._ce.on(ctx.logits.device))
        parts = {"ce": total.detach()}
        for name, (weight, penalty) in self.penalties.items():
            values = ctx.per_member(penalty(ctx), penalty.reduce)
            term = (self._weights[name].on(values.device, values.dtype) if name in self._weights else weight) * values
            parts[name] = term.detach()
            total = total + term
        return total.sum(), parts


def penalty_args(args: dict[str, Any]) -> dict[str, Any]:
    """A penalty spec's arguments without its weight (what two runs must share to compute it together)."""
    return {k: v for k, v in args.items() if k != "weight"}


def _penalty(name: str, args: dict[str, Any]) -> Penalty:
    if name not in PENALTIES:
        raise KeyError(f"unknown penalty {name!r}; known: {', '.join(sorted(PENALTIES))} (the papers register "
                       "theirs when loaded: `repro.papers.load_all`)")
    return PENALTIES[name](**penalty_args(args))


def _ce_weight(ce_weight: list[float] | None) -> Tensor | None:
    return None if ce_weight is None else torch.tensor(ce_weight, dtype=torch.float32)


def build_objective(spec: dict[str, Any], ce_weight: list[float] | None = None) -> Objective:
    """Build an objective from `{penalty_name: {"weight": w, **kwargs}}` and optional class weights
    for the cross-entropy (PyTorch's weighted mean)."""
    return Objective({name: (float(args["weight"]), _penalty(name, args)) for name, args in spec.items()},
                     _ce_weight(ce_weight))


def pack_terms(spec: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The penalties of `spec` (name, arguments as JSON) that the members of one pack must all have (those
    that are not `pure`); None if runs with `spec` cannot be packed at all (`Penalty.unpackable`)."""
    terms = [(name, _penalty(name, args)) for name, args in spec.items() if float(args["weight"]) != 0]
    if any(p.unpackable for _, p in terms):
        return None
    return sorted((name, json.dumps(penalty_args(spec[name]), sort_keys=True)) for name, p in terms if not p.pure)


def build_pack_objective(specs: list[dict[str, Any]], ce_weight: list[float] | None = None) -> Objective:
    """One objective for the members of a pack with objective specs `specs`: every penalty any member has,
    weighted per member (0 where a member lacks it). ValueError if a penalty's arguments differ between
    members, or if one that is not `pure` is missing from some (computing it would change their training).
    One spec: `build_objective`'s objective, so a run alone trains exactly as it always did."""
    if len(specs) == 1:
        return build_objective(specs[0], ce_weight)
    penalties: dict[str, tuple[float | Tensor, Penalty]] = {}
    for name in dict.fromkeys(n for spec in specs for n in spec):
        args = [penalty_args(spec[name]) for spec in specs if name in spec]
        if any(a != args[0] for a in args):
            raise ValueError(f"penalty {name!r} with different arguments in one pack: {args}")
        weights = torch.tensor([float(spec[name]["weight"]) if name in spec else 0.0 for spec in specs],
                               dtype=torch.float64)
        if not bool(weights.ne(0).any()):
            continue  # zero for every member: not part of the objective
        penalty = _penalty(name, args[0])
        if not penalty.pure and bool((weights == 0).any()):
            raise ValueError(f"penalty {name!r} is not pure and some members of the pack lack it")
        penalties[name] = (weights, penalty)
    return Objective(penalties, _ce_weight(ce_weight))

