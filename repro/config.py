"""Run configuration: frozen run configs, profiles (one table shape, one lookup), fidelity switches and the run
key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from repro.errors import UserError

PROFILES = ("paper", "quick", "smoke")
# The most seeds one command plans (--seeds, seed-count switches): 100x the papers' largest (10); a plan is held
# in memory run by run, and beyond this it is a typing mistake, not an experiment.
MAX_SEEDS = 1000
# The most members one vectorised pack takes (--pack): 16x the CUDA default of 64; more would not fit one GPU's
# memory for any packable model here, and a larger value is a typing mistake.
MAX_PACK = 1024
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
class Profiles:
    """One table of settings under the three profiles (`PROFILES`): `paper` holds the published values, `quick` and
    `smoke` override named fields only. A value that depends on the run (e.g. a dataset's recipe) is left out of
    `paper` and passed to `get` as its default."""

    paper: dict[str, Any]
    quick: dict[str, Any]
    smoke: dict[str, Any]

    def overrides(self, profile: str) -> dict[str, Any]:
        return {"paper": {}, "quick": self.quick, "smoke": self.smoke}[profile]

    def get(self, profile: str, name: str, default: Any = None) -> Any:
        """`name` under `profile`: the profile's override, else the paper value, else `default`."""
        overrides = self.overrides(profile)
        return overrides[name] if name in overrides else self.paper.get(name, default)

    def settings(self, profile: str) -> dict[str, Any]:
        """Every setting of the table under `profile`."""
        return {**self.paper, **self.overrides(profile)}


@dataclass(frozen=True)
class Bounds:
    """The values a numeric switch may take: finite, `low <= v` (`low < v` when `open_low`) and `v <= high`."""

    low: float
    high: float = math.inf
    open_low: bool = False

    def admits(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        return math.isfinite(value) and above and value <= self.high

    def __str__(self) -> str:
        low = f"{'greater than' if self.open_low else 'at least'} {self.low:g}"
        return low + ("" if self.high == math.inf else f" and at most {self.high:g}")


@dataclass(frozen=True)
class Switch:
    """A documented paper-vs-code difference (e.g. actdiff A-6) as a named config switch.

    `allowed` says which values a numeric switch takes: `Bounds`, or a tuple of the admitted values (e.g. the
    VGG layer counts that exist). A string switch takes its code and paper values; a bool true or false.
    """

    id: str
    name: str
    code: Any
    paper: Any
    default: Any
    doc: str
    allowed: Bounds | tuple[Any, ...] | None = None

    def value(self, fidelity: str, overrides: dict[str, str]) -> Any:
        """The switch value under a fidelity preset, unless overridden by name or id."""
        for k in (self.name, self.id):
            if k in overrides:
                return self.parse(overrides[k])
        return self.paper if fidelity == "paper" else self.default

    @property
    def numeric(self) -> bool:
        return isinstance(self.default, (int, float)) and not isinstance(self.default, bool)

    def describe_allowed(self) -> str:
        """The admitted values in words, as an error message or the switches listing shows them."""
        if isinstance(self.default, bool):
            return "true or false"
        if isinstance(self.default, str):
            return f"{self.code!r} (code) or {self.paper!r} (paper)"
        kind = "an integer" if isinstance(self.default, int) else "a number"
        if isinstance(self.allowed, tuple):
            return f"{kind}, one of {', '.join(map(str, self.allowed))}"
        return f"{kind}, {self.allowed}"

    def parse(self, text: str) -> Any:
        """Parse a command-line value: its type, then its range or choices (UserError naming the switch)."""
        value = self._typed(text)
        admitted = (value in self.allowed if isinstance(self.allowed, tuple)
                    else self.allowed is None or self.allowed.admits(value))
        if not admitted:
            raise UserError(f"switch {self.id} {self.name} takes {self.describe_allowed()}, not {text!r}")
        return value

    def _typed(self, text: str) -> Any:
        if isinstance(self.default, str):
            if text not in (self.code, self.paper):
                raise UserError(f"switch {self.id} {self.name} takes {self.describe_allowed()}, not {text!r}")
            return text
        if isinstance(self.default, bool):
            words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
            if text.lower() not in words:
                raise UserError(f"switch {self.id} {self.name} takes true or false, not {text!r}")
            return words[text.lower()]
        try:
            return type(self.default)(text)
        except ValueError:
            raise UserError(f"switch {self.id} {self.name} takes {self.describe_allowed()} "
                            f"(default {self.default}), not {text!r}") from None


def resolve_switches(switches: tuple[Switch, ...], fidelity: str, overrides: dict[str, str]) -> dict[str, Any]:
    """Resolve every switch of a paper to a value. An unknown name, or one switch given both by name and by id,
    raises UserError."""
    known = {s.name for s in switches} | {s.id for s in switches}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UserError(
            f"unknown switch {', '.join(unknown)}; known switches: "
            + ", ".join(f"{s.id}={s.name}" for s in switches)
        )
    for s in switches:
        if s.id in overrides and s.name in overrides:
            raise UserError(f"switch {s.id} is given twice, as {s.id}={overrides[s.id]} and as "
                            f"{s.name}={overrides[s.name]}: give it once")
    return {s.name: s.value(fidelity, overrides) for s in switches}


def parse_overrides(pairs: list[str] | None, option: str = "--switch") -> dict[str, str]:
    """`option`'s NAME=VALUE arguments as a dict; one without `=`, or a name given twice, raises UserError."""
    out: dict[str, str] = {}
    for s in pairs or []:
        name, sep, value = s.partition("=")
        if not sep:
            example = "std_ddof=0" if option == "--switch" else "account=abc"
            raise UserError(f"{option} {s!r} is not NAME=VALUE; for example {option} {example}")
        name = name.strip()
        if name in out:
            raise UserError(f"{option} {name} is given twice ({name}={out[name]} and {name}={value.strip()}): "
                            "give it once")
        out[name] = value.strip()
    return out
