"""Shared plumbing for building artefacts from done runs: per-run frames, output paths, provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd

from repro.papers import Context, PlannedRun
from repro.provenance import provenance
from repro.report.tables import stats_methods
from repro.runs.store import RunRecord, RunStore


def output_path(ctx: Context, artefact: str, kind: str) -> Path:
    folder, ext = ("tables", "csv") if kind == "table" else ("figures", "png")
    return ctx.out / folder / ctx.paper / f"{artefact}.{ext}"


def done_records(runs: list[PlannedRun], store: RunStore) -> list[tuple[PlannedRun, RunRecord]]:
    """The planned runs that are done, with their records."""
    pairs = [(r, store.record(r.config)) for r in runs]
    return [(r, rec) for r, rec in pairs if rec.path("done").exists()]


def per_run_frame(runs: list[PlannedRun], store: RunStore,
                  values: Callable[[dict[str, Any]], dict[str, float]]) -> pd.DataFrame:
    """One row per done run: its cell keys and `values(result.json)`."""
    rows = [{**r.cell, **values(rec.result())} for r, rec in done_records(runs, store)]
    return pd.DataFrame(rows)


def artefact_provenance(ctx: Context, artefact: str, runs: list[PlannedRun], store: RunStore,
                        **extra: Any) -> dict[str, Any]:
    """Profile, seeds, fidelity, the models' init where they have one (pretrained or not: the runs' `init` model
    argument; none for models that are always trained from scratch), run keys (done and missing), devices of the
    runs, commit and versions, and the methods of the intervals and tests (`stats_methods`)."""
    done = done_records(runs, store)
    devices = sorted({rec.result().get("device", "unknown") for _, rec in done})
    seeds = sorted({r.cell["seed"] for r in runs if "seed" in r.cell})
    inits = sorted({str(r.config.model_args["init"]) for r in runs if "init" in r.config.model_args})
    return provenance(
        paper=ctx.paper, artefact=artefact, profile=ctx.profile, seeds=seeds, fidelity=ctx.fidelity,
        **({"init": ", ".join(inits)} if inits else {}), switches=ctx.switches,
        run_keys=sorted({rec.key for _, rec in done}),
        missing_runs=[store.record(r.config).key for r in runs if store.record(r.config).key
                      not in {rec.key for _, rec in done}],
        run_devices=devices, statistics=stats_methods(), **extra,
    )
