"""Time estimates for runs not done yet, from measured speeds only: done runs of the same kind, else the speeds
`repro bench` recorded (`repro.runs.speeds`); runs with neither are counted and named, never given a time."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

from repro.papers import PlannedRun
from repro.provenance import device_kind
from repro.runs.speeds import Speed, objective_name, read_speeds
from repro.runs.store import RunRecord


@dataclass(frozen=True)
class Kind:
    """What a run's speed depends on: device, model, objective, batch, input size and training images."""

    device: str
    model: str
    objective: str
    batch: int
    image_size: int | None
    n_train: int | None

    def __str__(self) -> str:
        size = f"{self.image_size}px" if self.image_size else "size unknown"
        n = f"{self.n_train:,} images" if self.n_train else "training-set size unknown"
        return f"{self.model} {self.objective} {size} {n} batch {self.batch}"


def run_kind(run: PlannedRun, device: str) -> Kind:
    """The kind of `run` trained on `device` (`repro.provenance.device_kind`)."""
    cfg = run.config
    return Kind(device, cfg.model, objective_name(cfg.method_args.get("objective", {})), cfg.batch_size,
                run.image_size, run.n_train)


@dataclass
class Part:
    """The runs estimated from one source; `seconds` is None for those without a measurement."""

    source: str
    runs: int = 0
    seconds: float | None = 0.0
    kinds: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.seconds is None:
            named = ", ".join(f"{n} {k}" for k, n in self.kinds.items())
            return f"no measurement for {self.runs} runs ({named})"
        return f"{self.seconds / 60:.1f} min for {self.runs} runs {self.source}"


DONE = "done runs"


def remaining_epochs(record: RunRecord) -> int:
    return max(0, record.config.epochs - len(record.metrics()))


def estimate(todo: list[tuple[PlannedRun, RunRecord]], done: list[tuple[PlannedRun, RunRecord]], device: str,
             out: Path) -> list[Part]:
    """Seconds to train `todo` one run at a time on `device`, by source: the median seconds per epoch of `done`
    runs of the same kind, else the bench speeds under `out` (seconds per step x steps), else none."""
    per_epoch: dict[Kind, list[float]] = defaultdict(list)
    for run, rec in done:
        res = rec.result()  # the contract's keys, also for runs written before it
        per_epoch[run_kind(run, device_kind(res["device"]))].append(res["seconds"] / max(1, res["epochs"]))
    bench = {(s.device, s.model, s.objective, s.batch, s.image_size): (s, path)
             for path, speeds in read_speeds(out).items() for s in sorted(speeds, key=lambda s: s.measured)}
    parts: dict[str, Part] = {}
    used: set[Kind] = set()
    for run, rec in todo:
        kind = run_kind(run, device)
        measured = bench.get((device, kind.model, kind.objective, kind.batch, kind.image_size))
        if per_epoch.get(kind):
            seconds, source = median(per_epoch[kind]) * remaining_epochs(rec), DONE
            used.add(kind)
        elif measured and kind.n_train:
            speed, path = measured
            steps = -(-kind.n_train // kind.batch) * remaining_epochs(rec)
            seconds, source = speed.seconds_per_step * steps, bench_source(speed, path)
        else:
            seconds, source = None, "no measurement"
        part = parts.setdefault(source, Part(source, seconds=None if seconds is None else 0.0))
        part.runs += 1
        part.kinds[str(kind)] = part.kinds.get(str(kind), 0) + 1
        if seconds is not None:
            part.seconds += seconds
    if DONE in parts:
        parts[DONE].source = f"from {sum(len(per_epoch[k]) for k in used)} done runs of the same kind"
    return list(parts.values())


def bench_source(speed: Speed, path: Path) -> str:
    return f"from bench {speed.device} {speed.measured} ({speed.source} profile, {path})"
