"""TAP artefacts: the lambda sweep table and Figure 5 (decoy MNIST bars with Delta)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repro.papers import Context, PlannedRun
from repro.papers import tap as paper
from repro.report.artefacts import artefact_provenance, output_path, per_run_frame
from repro.report.figures import new_figure, save_figure
from repro.report.tables import write_table
from repro.runs.store import RunStore

# Fig. 5's stated outcome (spec §1.3) as checkable statements on the Delta-accuracy means.
FIGURE5_EXPECTATIONS = {
    "No XS: Delta-accuracy strongly negative (< -0.2)": lambda d: d["No XS"] < -0.2,
    "TAP: |Delta-accuracy| small (< 0.05)": lambda d: abs(d["TAP"]) < 0.05,
    "RRR: |Delta-accuracy| small (< 0.05)": lambda d: abs(d["RRR"]) < 0.05,
    "RBR: |Delta-accuracy| small (< 0.05)": lambda d: abs(d["RBR"]) < 0.05,
    "Base: |Delta-accuracy| small (< 0.05)": lambda d: abs(d["Base"]) < 0.05,
}


def lambdas(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """One row per (method, lambda): final-epoch permuted-val CE; `chosen` marks the selected lambda."""
    frame = per_run_frame(runs, store, lambda res: {"val_ce": res["final"]["valid"]["ce"],
                                                    "val_accuracy": res["final"]["valid"]["accuracy"]})
    chosen = paper.chosen_lambdas(ctx)
    frame["chosen"] = [chosen[m] == lam for m, lam in zip(frame["method"], frame["lambda"])]
    path = write_table(frame.drop(columns=["seed"]), output_path(ctx, "lambdas", "table"),
                       artefact_provenance(ctx, "lambdas", runs, store, rule="lowest final-epoch permuted-val CE"))
    from rich.console import Console

    Console().print("chosen lambdas: " + ", ".join(f"{m} {v:g}" for m, v in chosen.items() if v is not None))
    return [path]


def figure5(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Accuracy on the correlated test set (left) and Delta = permuted - correlated (right), mean ± std."""
    chosen = paper.chosen_lambdas(ctx)
    seeds = ctx.seeds or paper.setting(ctx, "seeds")
    main = list({r.config.key: r for r in runs
                 if r.cell["lambda"] == chosen.get(r.cell["method"]) and r.cell["seed"] < seeds}.values())
    frame = per_run_frame(main, store, lambda res: {
        "accuracy": res["final"]["test_cor"]["accuracy"],
        "delta": res["final"]["test"]["accuracy"] - res["final"]["test_cor"]["accuracy"]})
    agg = frame.groupby("method", sort=False).agg(
        accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
        delta_mean=("delta", "mean"), delta_std=("delta", "std"), n=("accuracy", "count"),
        lam=("lambda", "first")).reindex(paper.METHODS)
    checks = {text: bool(rule(agg["delta_mean"])) if agg["delta_mean"].notna().all() else None
              for text, rule in FIGURE5_EXPECTATIONS.items()}
    fig, axes = new_figure(1, 2, (10, 4))
    x = np.arange(len(paper.METHODS))
    for ax, col, title in zip(axes[0], ("accuracy", "delta"), ("accuracy (correlated test)", "Delta-accuracy")):
        ax.bar(x, agg[f"{col}_mean"], yerr=agg[f"{col}_std"].fillna(0), capsize=4, color="tab:blue")
        ax.set_xticks(x, paper.METHODS)
        ax.set_title(title)
        ax.axhline(0, color="black", lw=0.8)
    fig.suptitle(f"Decoy MNIST, two-layer CNN, ground-truth masks ({ctx.profile} profile)")
    arrays = {f"{c}_{s}": agg[f"{c}_{s}"].to_numpy(dtype=float) for c in ("accuracy", "delta") for s in ("mean", "std")}
    prov = artefact_provenance(ctx, "figure5", runs, store, expectations=checks,
                               lambdas=chosen,
                               values=agg.reset_index().to_dict(orient="records"))
    path = save_figure(fig, output_path(ctx, "figure5", "figure"), prov, arrays)
    csv = write_table(agg.reset_index(), path.with_suffix(".csv"), prov)
    _print(agg, checks)
    return [path, csv]


def _print(agg: pd.DataFrame, checks: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console()
    for method, row in agg.iterrows():
        console.print(f"{method:6s} accuracy {row['accuracy_mean']:.3f} ± {row['accuracy_std']:.3f}  "
                      f"Delta {row['delta_mean']:+.3f} ± {row['delta_std']:.3f}  (n={int(row['n']) if row['n'] == row['n'] else 0})")
    for text, ok in checks.items():
        console.print(f"[{'green' if ok else 'red'}]{'holds' if ok else 'does not hold' if ok is False else 'n/a'}[/]: {text}")
