"""actdiff artefacts shared by the datasets: the synthetic table writer, claim helpers, the model of a done run,
and Table 2 (the synthetic and MSD columns). The artefacts of one dataset are in `report_synthetic`, `report_xray`
and `report_msd`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repro.papers import Context, PlannedRun, get_paper
from repro.papers.actdiff import plans as paper
from repro.report.artefacts import artefact_provenance, done_records, output_path, per_run_frame
from repro.report.claims import Claim, Compare, evaluate_claims, report_claims, seeds_by
from repro.report.tables import aggregate, compare, print_table, read_published, write_table
from repro.runs.prepared import prepared_dir, prepared_root
from repro.runs.store import RunStore


KEYS = ["model", "method"]


def synthetic_data(ctx: Context, runs: list[PlannedRun]) -> str:
    """Which synthetic data the synthetic runs read: the authors' files (with their fingerprint) or the generator;
    without runs, what a run would read now (A-20)."""
    from repro.papers.actdiff.data_synth2_files import describe, synth2_source

    settings = [r.config.data for r in runs if r.config.dataset == "synthetic"] or [synth2_source(ctx) or {}]
    return "; ".join(sorted({describe(d, prepared_root(ctx.runs_dir)) for d in settings}))


def synthetic_files(ctx: Context) -> dict[str, np.ndarray] | None:
    """The authors' synth2 pools when the runs read them (A-20), for figures that show the data; else None."""
    from repro.papers.actdiff.data_synth2_files import load_pools, synth2_source

    source = synth2_source(ctx)
    return load_pools(prepared_dir(ctx.runs_dir, source["prepared"]), source["fingerprint"]) if source else None


def synthetic_table(ctx: Context, runs: list[PlannedRun], store: RunStore, name: str, per_run: pd.DataFrame,
                    columns: dict[str, tuple[str, str, Any]], extra: dict[str, Any]
                    ) -> tuple[Path, dict[str, Any], dict[tuple, list[float]]]:
    """Write the table of the per-run values beside the paper's; returns its path, its provenance (with the
    synthetic data read) and the per-seed values of each (model, method, value) cell (for its claims). Every value is
    an accuracy or AUC in [0, 1] but `best_epoch`, in [0, epochs - 1] of its row's runs: a cell whose tolerance
    spans that range is flagged as one that cannot fail."""
    per_run = per_run.reindex(columns=list(dict.fromkeys([*per_run.columns, *KEYS, *columns])))
    epochs = {(r.cell["model"], r.cell["method"]): r.config.epochs for r in runs}
    bounds = {v: (lambda key: (0.0, epochs.get(key, 1) - 1.0)) if v == "best_epoch" else (lambda key: (0.0, 1.0))
              for v in columns}
    table = compare(aggregate(per_run, KEYS, list(columns)), read_published("actdiff", name), KEYS, columns, bounds)
    prov = artefact_provenance(ctx, name, runs, store, synthetic_data=synthetic_data(ctx, runs), **extra)
    path = write_table(table, output_path(ctx, name, "table"), prov)
    print_table(table, f"actdiff {name} ({ctx.profile} profile)", KEYS, list(columns))
    return path, prov, seeds_by(per_run, KEYS, list(columns))


CHANCE = 0.5


def cell_test(model: str, method: str, value: str, op: str, right: Any, quote: str = "") -> Compare:
    return Compare((model, method, value), op, right, quote)  # type: ignore[arg-type]


RESNET_ACTDIFF = ("Experiments with an 18-layer ResNet demonstrate good performance using classification and "
                  "*actdiff* alone (“ResNet Actdiff”).")


def trained_model(ctx: Context, runs: list[PlannedRun], store: RunStore, model: str, method: str,
                  task: str | None = None) -> Any:
    """The done run's model (A-14 weights) of a (model, method) cell, of an MSD task's runs when `task` is given."""
    from repro.engine import load_weights

    for r, rec in done_records(runs, store):
        if (r.cell["model"], r.cell["method"], r.cell.get("task")) == (model, method, task):
            return load_weights(rec, ctx.switches["saliency_model"])
    raise FileNotFoundError(f"no done run for {task + ' ' if task else ''}{model} {method}")


def table2(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Compare metric at the best-valid epoch: the synthetic column on the HEAD test set and the distractor-free one
    (A-2), and the Liver, Cardiac and Pancreas columns on each task's test slices (a task not prepared stays
    empty, and the provenance says why)."""
    metric = ctx.switches["selection_metric"]
    tol = get_paper("actdiff").artefacts["table2"].tolerance
    splits = ["test", "test_clean"]
    if ctx.switches["synthetic_test"] == "test_clean":
        splits.reverse()
    frames = [per_run_frame([r for r in runs if r.config.dataset == "synthetic"], store,
                            lambda res: {f"synthetic_{s}": res["best"][s][metric] for s in splits})]
    frames += [per_run_frame([r for r in runs if r.cell.get("task") == task], store,
                             lambda res, task=task: {task: res["best"]["test"][metric]}) for task in paper.MSD_TASKS]
    columns = {f"synthetic_{s}": ("synthetic", "synthetic_std", tol["synthetic"]) for s in splits}
    columns |= {task: (task, f"{task}_std", tol[task]) for task in paper.MSD_TASKS}
    msd = msd_data(ctx, {r.cell["task"] for r in runs if "task" in r.cell})
    extra = {"metric": metric, "msd_data": msd,
             "note": "both synthetic test variants vs the paper's synthetic column (A-2); MSD: "
                     + "; ".join(f"{task} {what}" for task, what in msd.items())}
    frame = pd.concat(frames, ignore_index=True)
    path, prov, seeds = synthetic_table(ctx, runs, store, "table2", frame, columns, extra)
    for task, what in msd.items():
        print(f"{task}: {what}")
    shown = {(m, k, "synthetic"): v for (m, k, col), v in seeds.items() if col == f"synthetic_{splits[0]}"}
    checked = evaluate_claims(TABLE2_CLAIMS, shown)
    note = f"synthetic = {splits[0]} (A-2 synthetic_test) at the best-valid epoch"
    return [path, report_claims(ctx, "table2", checked, prov, dict.fromkeys(checked, note))]


def msd_data(ctx: Context, planned: set[str]) -> dict[str, str]:
    """Per MSD task, where its column's slices came from: synthetic fixtures (smoke), the task folder, or why none."""
    from repro.papers.actdiff.data_msd import TASKS
    from repro.papers.actdiff.msd_sources import msd_source, synthetic

    out = {}
    for task in paper.MSD_TASKS:
        if task not in planned:
            out[task] = f"not prepared: no MSD/{TASKS[task].folder}/ under the data root (column left empty)"
        elif synthetic(ctx):
            out[task] = "SYNTHETIC: small NIfTI fixtures in the MSD layout (smoke profile), not the MSD data"
        else:
            out[task] = f"slices of {msd_source(ctx, task, 0)['folder']}"
    return out


BEST_EPOCH_CHANCE = "Note the “Best Epoch” for overfit models is misleading as the best performance is chance."


TABLE2_CLAIMS: dict[str, Claim] = {
    "ResNet Actdiff generalises to the test set (above ResNet Classify)": Claim(RESNET_ACTDIFF, (
        cell_test("ResNet", "Actdiff", "synthetic", ">", ("ResNet", "Classify", "synthetic")),)),
    "Overfit Classify models are selected at chance (ResNet, Conv AE, UNet)": Claim(BEST_EPOCH_CHANCE, tuple(
        cell_test(m, "Classify", "synthetic", "~", CHANCE, "the best performance is chance")
        for m in ("ResNet", "Conv AE", "UNet"))),
}
