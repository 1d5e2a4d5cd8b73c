"""Run configuration: frozen run configs, profiles, fidelity switches and the run key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

PROFILES = ("paper", "quick", "smoke")
FIDELITIES = ("code", "paper")


@dataclass(frozen=True)
class RunConfig:
    """Everything that changes the result of one training run.

    `data`, `model_args` and `method_args` hold the dataset, architecture and objective settings,
    fidelity switches included; `optimizer` names the optimiser and its arguments (constant lr);
    `metrics` are computed on every evaluation split; `selection` is `<split>/<metric>` (the first epoch
    with the highest value) or `final` (the last epoch). The run key hashes all fields.
    """

    paper: str
    dataset: str
    model: str
    method: str
    seed: int
    epochs: int
    batch_size: int
    lr: float
    data: dict[str, Any] = field(default_factory=dict)
    model_args: dict[str, Any] = field(default_factory=dict)
    method_args: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=lambda: {"name": "adam"})
    metrics: tuple[str, ...] = ("accuracy", "rocauc")
    selection: str = "valid/accuracy"
    semantics: str = "1"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        return cls(**{**d, "metrics": tuple(d.get("metrics", cls.metrics))})

    @property
    def key(self) -> str:
        """Stable 16-hex-digit hash of the canonical JSON of the config."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Switch:
    """A documented paper-vs-code difference (e.g. actdiff A-6) as a named config switch."""

    id: str
    name: str
    code: Any
    paper: Any
    default: Any
    doc: str

    def value(self, fidelity: str, overrides: dict[str, str]) -> Any:
        """The switch value under a fidelity preset, unless overridden by name or id."""
        for k in (self.name, self.id):
            if k in overrides:
                return self.parse(overrides[k])
        return self.paper if fidelity == "paper" else self.default

    def parse(self, text: str) -> Any:
        """Parse a command-line value; string switches accept only their code and paper values."""
        if isinstance(self.default, str):
            if text not in (self.code, self.paper):
                raise ValueError(f"switch {self.id} {self.name}: {text!r} is not one of {self.code!r}, {self.paper!r}")
            return text
        kind = type(self.default)
        if kind is bool:
            words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
            if text.lower() not in words:
                raise ValueError(f"switch {self.id} {self.name} takes true or false, not {text!r}")
            return words[text.lower()]
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"switch {self.id} {self.name} takes {'an integer' if kind is int else 'a number'} "
                             f"(default {self.default}), not {text!r}") from None


def resolve_switches(switches: tuple[Switch, ...], fidelity: str, overrides: dict[str, str]) -> dict[str, Any]:
    """Resolve every switch of a paper to a value; unknown override names raise ValueError."""
    known = {s.name for s in switches} | {s.id for s in switches}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"unknown switch {', '.join(unknown)}; known switches: "
            + ", ".join(f"{s.id}={s.name}" for s in switches)
        )
    return {s.name: s.value(fidelity, overrides) for s in switches}
