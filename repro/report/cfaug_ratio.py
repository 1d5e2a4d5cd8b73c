"""cfaug Figure 5 (§2.4): IN-9 accuracy on one test set against the training-data ratio, per method, mean and
std over seeds (ratios < 1 train on a fixed subset, > 1 add unmasked IN-9L images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.papers import Context, PlannedRun
from repro.report.artefacts import artefact_provenance, output_path, per_run_frame
from repro.report.figures import new_figure, save_figure
from repro.report.tables import aggregate
from repro.runs.store import RunStore


def figure5(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    from repro.papers.cfaug import RATIO_SET

    frame = per_run_frame(runs, store, lambda res: {"accuracy": res["best"][RATIO_SET]["accuracy"]})
    stats = aggregate(frame, ["method", "ratio"], ["accuracy"], ctx.switches["std_ddof"])
    fig, axes = new_figure(1, 1, (6.0, 4.2))
    ax = axes[0][0]
    for method, part in stats.groupby("method", sort=False):
        part = part.sort_values("ratio")
        ax.errorbar(part["ratio"], part["accuracy_mean"], yerr=part["accuracy_std"].fillna(0), marker="o",
                    capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("training data ratio (1 = IN-9 train)")
    ax.set_ylabel(f"{RATIO_SET} accuracy (%)")
    ax.legend(fontsize=7)
    fig.suptitle(f"cfaug figure5: IN-9, {len(frame)} runs ({ctx.profile} profile)")
    prov = artefact_provenance(ctx, "figure5", runs, store, test_set=RATIO_SET, std_ddof=ctx.switches["std_ddof"],
                               inferred="ratios, methods and test set are the spec's defaults (§2.4); the paper's "
                                        "are not recoverable from its text")
    arrays = {c: stats[c].to_numpy(dtype=str if c == "method" else float)
              for c in ("method", "ratio", "accuracy_mean", "accuracy_std")}
    arrays["accuracy_n"] = stats["accuracy_n"].to_numpy(dtype=np.int64)
    return [save_figure(fig, output_path(ctx, "figure5", "figure"), prov, arrays)]
