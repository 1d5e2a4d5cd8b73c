"""cfaug Figures 4, 7 and 10 (§2.4, §7.5): saliency AUPR (x) against accuracy or AUC (y) on two evaluation sets,
one point per trained run (the tables' configs and the hyperparameter grids), with the OLS line and R² per panel
beside the R² the paper prints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from repro.papers import Context, PlannedRun
from repro.report.artefacts import done_records, output_path
from repro.papers.cfaug.report import cfaug_provenance, run_device
from repro.report.figures import new_figure, save_figure
from repro.runs.store import RunStore

FAMILIES = ("Orig", "Sal", "CF", "F", "CF+F", "Mixup", "LS")


def family(method: str) -> str:
    """The method family a point is coloured by: Orig, Sal, CF, F, CF+F (combinations), Mixup, LS."""
    if method in ("Orig", "Sal", "Mixup", "LS"):
        return method
    return "CF+F" if "+" in method else method.split("(")[0]


def scatter(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    from repro.papers.cfaug.metrics import r_squared
    from repro.papers.cfaug.posthoc import saliency_of_run
    from repro.papers.cfaug.plans import SCATTERS, saliency_settings
    dataset = runs[0].cell["dataset"]
    name, (_, sets, paper_r2) = next((n, v) for n, v in SCATTERS.items() if v[0] == dataset)
    settings, device = saliency_settings(ctx), run_device(ctx)
    rows = []
    for r, rec in done_records(runs, store):
        res = rec.result()
        aupr = saliency_of_run(rec, sets, settings, device)
        rows += [{**r.cell, "set": s, "aupr": aupr[s], "value": res["best"][s][res["metric"]]} for s in sets]
    frame = pd.DataFrame(rows)
    fig, axes = new_figure(1, len(sets), (5.0 * len(sets), 4.2))
    r2 = {}
    for ax, s in zip(axes[0], sets):
        part = frame[frame["set"] == s].dropna(subset=["aupr", "value"]) if len(frame) else frame
        r2[s] = r_squared(part["aupr"].to_numpy(), part["value"].to_numpy()) if len(part) > 2 else float("nan")
        for fam in FAMILIES:
            pts = part[part["method"].map(family) == fam] if len(part) else part
            if len(pts):
                ax.scatter(pts["aupr"], pts["value"], s=18, label=fam)
        if len(part) > 2 and np.ptp(part["aupr"].to_numpy()) > 0:
            slope, icpt = np.polyfit(part["aupr"], part["value"], 1)
            xs = np.linspace(part["aupr"].min(), part["aupr"].max(), 2)
            ax.plot(xs, slope * xs + icpt, "k--", lw=1)
        paper = f", paper {paper_r2[s]:g}" if s in paper_r2 else ""
        ax.set_title(f"{s}: R² = {r2[s]:.3f}{paper}")
        ax.set_xlabel("saliency AUPR (%)")
        ax.set_ylabel("AUC (%)" if dataset == "cct" else "accuracy (%)")
    axes[0][0].legend(fontsize=7)
    synthetic = any(rec.result().get("synthetic_data") for _, rec in done_records(runs, store))
    fig.suptitle(f"cfaug {name}: {dataset}, {len(frame) // max(len(sets), 1)} runs ({ctx.profile} profile)"
                 + (" (synthetic data)" if synthetic else ""))
    prov = cfaug_provenance(ctx, name, runs, store, r_squared=r2, paper_r_squared=paper_r2, saliency=settings,
                               synthetic_data=synthetic, points="one per trained run (seed), §7.5")
    arrays = {"aupr": frame.get("aupr", pd.Series(dtype=float)).to_numpy(dtype=float),
              "value": frame.get("value", pd.Series(dtype=float)).to_numpy(dtype=float),
              "set": frame.get("set", pd.Series(dtype=str)).to_numpy(dtype=str),
              "method": frame.get("method", pd.Series(dtype=str)).to_numpy(dtype=str),
              "hparam": frame.get("hparam", pd.Series(dtype=str)).to_numpy(dtype=str)}
    path = save_figure(fig, output_path(ctx, name, "figure"), prov, arrays)
    for s in sets:
        print(f"{name} {s}: R² = {r2[s]:.3f}" + (f" (paper {paper_r2[s]:g})" if s in paper_r2 else ""))
    return [path]
