"""cfaug Figure 5 (§2.4): IN-9 accuracy on one test set against the training-data ratio, per method, mean and
std over seeds (ratios < 1 train on a fixed subset, > 1 add unmasked IN-9L images). A ratio > 1 asks for more
IN-9L images than may exist; such capped points are marked with the ratio they reached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repro.papers import Context, PlannedRun
from repro.report.artefacts import done_records, output_path
from repro.papers.cfaug.report import cfaug_provenance
from repro.report.figures import new_figure, save_figure
from repro.report.tables import aggregate
from repro.runs.store import RunStore


def reached_ratio(details: dict[str, Any]) -> tuple[float, bool]:
    """(the training-data ratio a run reached, whether fewer IN-9L images existed than its ratio asked for), from
    its data details (`repro.papers.cfaug.data.load_cfaug`)."""
    base, train, extra = details["ratio_base"], details["counts"]["train"], details["extra"]
    wanted = details["extra_wanted"]
    return (train + extra) / base, wanted is not None and extra < wanted


def error_bars(mean: pd.Series, std: pd.Series) -> np.ndarray:
    """(2, n) lower / upper error bars of one std, the lower one cut at 0 % (no accuracy below 0)."""
    std = std.fillna(0).to_numpy(dtype=float)
    return np.stack([np.minimum(std, mean.to_numpy(dtype=float)), std])


def _frame(runs: list[PlannedRun], store: RunStore, test_set: str) -> pd.DataFrame:
    rows = []
    for r, rec in done_records(runs, store):
        res = rec.result()
        reached, capped = reached_ratio(res["details"])
        rows.append({**r.cell, "accuracy": res["best"][test_set]["accuracy"], "reached": reached,
                     "capped": float(capped), "synthetic": bool(res.get("synthetic_data"))})
    return pd.DataFrame(rows, columns=["method", "ratio", "accuracy", "reached", "capped", "synthetic"])


def figure5(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    from repro.papers.cfaug.plans import RATIO_SET
    frame = _frame(runs, store, RATIO_SET)
    stats = aggregate(frame, ["method", "ratio"], ["accuracy", "reached", "capped"], ctx.switches["std_ddof"])
    stats["capped"] = stats["capped_mean"] > 0
    fig, axes = new_figure(1, 1, (6.0, 4.2))
    ax = axes[0][0]
    for method, part in stats.groupby("method", sort=False):
        part = part.sort_values("ratio")
        ax.errorbar(part["ratio"], part["accuracy_mean"], yerr=error_bars(part["accuracy_mean"], part["accuracy_std"]),
                    marker="o", capsize=3, label=method)
    for ratio, part in stats[stats["capped"]].groupby("ratio"):
        ax.axvline(ratio, ls=":", lw=1, color="grey")
        ax.annotate(f"capped: reached {part['reached_mean'].mean():.2g}", (ratio, 0.02),
                    xycoords=("data", "axes fraction"), fontsize=6, rotation=90, ha="right", va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("requested training data ratio (1 = IN-9 train)")
    ax.set_ylabel(f"{RATIO_SET} accuracy (%)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    synthetic = bool(frame["synthetic"].any())
    short = sorted({f"{r:g}" for r in stats.loc[stats["capped"], "ratio"]}, key=float)
    cap_line = f"\nratio {', '.join(short)} capped by the available IN-9L images (dotted)" if short else ""
    fig.suptitle(f"cfaug figure5: IN-9, {len(frame)} runs ({ctx.profile} profile)"
                 + (" (synthetic data)" if synthetic else "") + cap_line, fontsize=9)
    prov = cfaug_provenance(ctx, "figure5", runs, store, test_set=RATIO_SET, std_ddof=ctx.switches["std_ddof"],
                            synthetic_data=synthetic, capped_ratios=[float(r) for r in short],
                            inferred="ratios (0.1-4 x the original data), methods and test set are repro's choice; the paper's "
                                     "are not recoverable from its text")
    arrays = {c: stats[c].to_numpy(dtype=str if c == "method" else float)
              for c in ("method", "ratio", "accuracy_mean", "accuracy_std", "reached_mean")}
    arrays["accuracy_n"] = stats["accuracy_n"].to_numpy(dtype=np.int64)
    arrays["capped"] = stats["capped"].to_numpy(dtype=bool)
    return [save_figure(fig, output_path(ctx, "figure5", "figure"), prov, arrays)]
