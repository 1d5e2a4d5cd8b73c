"""Paper registry: each paper module declares its artefacts, hyperparameters, switches and published numbers.

Paper modules import no torch at import time, so that `repro --help` stays instant.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from repro.config import RunConfig, Switch, resolve_switches
from repro.errors import UserError

PUBLISHED = Path(__file__).parent / "published"
PAPER_NAMES = ("actdiff", "tap", "cfaug", "masktune", "cross")
STUDIES = ("cross",)  # registered like papers, but studies of the others (issue 29): no paper text, no claims
NOT_PREPARED = "not prepared"  # the data fingerprint of a dry-run plan's runs whose data is not prepared yet


@dataclass(frozen=True)
class Context:
    """What one artefact command was asked for."""

    paper: str
    profile: str
    seeds: int | None
    fidelity: str
    switches: dict[str, Any]
    out: Path
    data_root: Path | None = None
    runs_dir: Path = Path("runs")
    init: str = "imagenet"  # pretrained models: "imagenet" (paper) or "random" (not paper-faithful)
    device: str = "auto"  # --device, for artefacts that measure on it (TAP Table 1)
    # --dry-run: plan only, reading what is there and writing nothing. A `prepare` only checks the raw data; a plan
    # stands in for what is not there yet (data not prepared, a choice from runs not done) and marks those runs
    # (`PlannedRun.after`), or raises `NotPrepared` where it cannot.
    dry_run: bool = False


@dataclass(frozen=True)
class PlannedRun:
    """One run an artefact needs: a display label, the table/figure cell it feeds, and its config. `n_train`
    (training images per epoch) and `image_size` (input side, px) size it for the time estimate, where the plan
    reads them cheaply (None: unknown). `after` is empty, or in a dry-run plan what the run waits for (e.g. the
    sweep that picks its lambda): its config then holds a stand-in, so it counts and costs as the real run."""

    label: str
    cell: dict[str, Any]
    config: RunConfig
    n_train: int | None = None
    image_size: int | None = None
    after: str = ""


@dataclass(frozen=True)
class Tolerance:
    """A reproduced mean is within tolerance when |diff| <= abs + k_std * published std."""

    abs: float
    k_std: float = 2.0

    def within(self, diff: float, published_std: float) -> bool:
        std = published_std if published_std == published_std else 0.0  # NaN -> 0
        return abs(diff) <= self.abs + self.k_std * std


@dataclass(frozen=True)
class Artefact:
    """A table or figure of a paper. `plan` lists its runs; `build` writes its files from done runs;
    `prepare`, if set, makes the derived data the runs need (before planning); `datasets` names the datasets it
    reads under the data root (`repro data check` names, which `--download` fetches).
    """

    name: str
    title: str
    plan: Callable[[Context], list[PlannedRun]]
    build: Callable[[Context, list[PlannedRun], Any], list[Path]]
    tolerance: dict[str, Tolerance] = field(default_factory=dict)
    prepare: Callable[[Context], None] | None = None
    datasets: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return "figure" if self.name.startswith("figure") else "table"


@dataclass(frozen=True)
class Paper:
    name: str
    title: str
    artefacts: dict[str, Artefact]
    switches: tuple[Switch, ...] = ()
    default_seeds: int = 1
    prepare: Callable[[Context], None] | None = None  # `repro data prepare <paper>`: all its derived data
    # (record, device, stage) -> the `repro.engine.Job` of runs whose method_args name a "trainer"; `stage` trains
    # another run (an earlier stage of a pipeline) through the same loop.
    job: Callable[..., Any] | None = None
    # Imports the paper's modules that register penalties, models and dataset builders into the shared registries
    # (`repro.methods`, `repro.models`, `repro.data.registry`); `load_all` calls it before the registries are used.
    register: Callable[[], None] | None = None
    # `repro bench` (`repro.bench`): the paper's training-step cases (members per grid -> `repro.bench.Case`s,
    # measured by the shared bench), or rows it measures itself ((profile, device) -> (grid, label, members, measure)).
    bench_cases: Callable[[int], list[Any]] | None = None
    bench_rows: Callable[[str, Any], Any] | None = None

    def context(self, profile: str, seeds: int | None, fidelity: str, overrides: dict[str, str],
                out: Path, data_root: Path | None, runs_dir: Path = Path("runs"), init: str = "imagenet",
                device: str = "auto", dry_run: bool = False) -> Context:
        """The context of a command; a --data-root that is a file (or under one) raises StoreError."""
        from repro.runs.store import check_folder

        if data_root is not None:
            check_folder(Path(data_root), "--data-root (or REPRO_DATA)")
        return Context(self.name, profile, seeds, fidelity,
                       resolve_switches(self.switches, fidelity, overrides), out, data_root, runs_dir, init, device,
                       dry_run)


def distinct_runs(runs: list[PlannedRun]) -> list[PlannedRun]:
    """The first planned run of each run key, in plan order: rows that share a config share one run."""
    first: dict[str, PlannedRun] = {}
    for run in runs:
        first.setdefault(run.config.key, run)
    return list(first.values())


class NotPrepared(UserError, FileNotFoundError):
    """Derived data that `repro data prepare` makes from raw data present under the data root is not there yet,
    and a dry-run plan cannot stand in for it."""


def get_paper(name: str) -> Paper:
    """The paper module's `PAPER`, imported on first use (the one place that names a paper's module by string)."""
    if name not in PAPER_NAMES:
        raise UserError(f"unknown paper {name!r}; known: {', '.join(PAPER_NAMES)}")
    return importlib.import_module(f"repro.papers.{name}").PAPER


def load_all() -> None:
    """Fill the shared registries (`repro.methods`, `repro.models`, `repro.data.registry`) with every paper's
    entries (each paper's `Paper.register`). The registries never import a paper: whoever looks a name up calls
    this first (the pipeline, the launcher's workers, the bench); it imports torch, so `repro --help` does not."""
    for name in PAPER_NAMES:
        register = get_paper(name).register
        if register is not None:
            register()


def deferred(load: Callable[[], ModuleType], name: str) -> Callable[..., Any]:
    """Function `name` of the module that `load` imports (a function whose body is a plain import, so readers and
    tools can follow it), imported when first called: keeps torch and pandas out of `repro --help`. The closure's
    `target` is `(load, name)`, so a test can resolve every deferred function without calling it."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(load(), name)(*args, **kwargs)

    call.__name__ = name
    call.target = (load, name)  # type: ignore[attr-defined]
    return call
