"""Measured training speeds that the time estimate reads: one row per (device, model, objective, batch, image
size) with its seconds per optimiser step, as `repro bench` measured it one run at a time. They live beside
the bench's tables, in `<output root>/benchmarks/<device>.speeds.csv`."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from repro.runs.store import atomic_write_text

FOLDER = "benchmarks"
SUFFIX = ".speeds.csv"


@dataclass(frozen=True)
class Speed:
    """One measurement: `seconds_per_step` of `model` with `objective` at `batch` x `image_size` px on `device`
    (`repro.provenance.device_kind`), by the bench at profile `source` on `measured` (a date)."""

    device: str
    model: str
    objective: str
    batch: int
    image_size: int
    seconds_per_step: float
    measured: str
    source: str


def objective_name(spec: dict[str, Any]) -> str:
    """The loss terms of an objective spec (`{"tap": {...}, ...}`), e.g. `gradmask+recon`, or `none`."""
    return "+".join(sorted(spec)) or "none"


def write_speeds(path: Path, speeds: list[Speed]) -> Path:
    """Write `speeds` as a CSV at `path`, replacing it atomically (`repro.runs.store.atomic_write_text`)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, [f.name for f in fields(Speed)])
    writer.writeheader()
    writer.writerows(asdict(s) for s in speeds)
    atomic_write_text(path, text.getvalue())
    return path


def read_speeds(out: Path) -> dict[Path, list[Speed]]:
    """The speeds recorded under `<out>/benchmarks/`, by file (none: empty)."""
    found = {}
    for path in sorted((Path(out) / FOLDER).glob(f"*{SUFFIX}")):
        with path.open(newline="") as f:
            found[path] = [Speed(r["device"], r["model"], r["objective"], int(r["batch"]), int(r["image_size"]),
                                 float(r["seconds_per_step"]), r["measured"], r["source"]) for r in csv.DictReader(f)]
    return found
