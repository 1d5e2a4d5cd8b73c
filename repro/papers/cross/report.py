"""`repro cross` outputs: per benchmark a table (every method: the mask it saw, home cell or not, the shifted
metric's mean and 95 % interval, the correlated metric, the gap, the rank; the methods without a cell with the
reason) and a bar figure; for all benchmarks the matrix (CSV and heatmap). Each benchmark's metric is its home
paper's (accuracy; TAP's F1 on PNEU, MAE on KNEE: `Benchmark.metric`). Written by the shared writers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repro.papers import Context, PlannedRun
from repro.papers.cross.benchmarks import (BENCHMARKS, BENCHMARKS_NOT_YET, METHODS, SYNTH2, Benchmark,
                                           absent, chosen_lambda, hosted, main_runs, n_seeds)
from repro.papers.cross.masks import MASKS
from repro.report.artefacts import artefact_provenance, output_path, per_run_frame
from repro.report.figures import new_figure, save_figure
from repro.report.tables import aggregate, write_table
from repro.runs.store import FAILED, RunStore

VALUES = ("shifted", "correlated", "gap")
COLUMNS = ["benchmark", "method", "metric", "mask", "home", "lambda", "shifted_mean", "shifted_ci_low",
           "shifted_ci_high", "shifted_n", "correlated_mean", "gap_mean", "gap_ci_low", "gap_ci_high", "rank", "note"]


def bench_frame(ctx: Context, bench: Benchmark, runs: list[PlannedRun], store: RunStore) -> pd.DataFrame:
    """One row per method of the study on `bench`: the aggregate of its done seeds, or the reason it has no cell."""
    (part, split), (cor_part, cor_split) = bench.shifted(ctx), bench.correlated

    def values(res: dict[str, Any]) -> dict[str, float]:
        s, c = bench.value(res, (part, split)), bench.value(res, (cor_part, cor_split))
        return {"shifted": s, "correlated": c, "gap": s - c}

    mains = main_runs(ctx, bench, runs)
    per_run = per_run_frame(mains, store, values)
    agg = aggregate(per_run, ["method"], list(VALUES)).set_index("method")
    rows = []
    for method in METHODS:
        if method in hosted(bench):
            lam = chosen_lambda(ctx, bench, method)
            notes = [bench.switch_changes.get(method.name, ({}, ""))[1], failures(mains, method.name, store),
                     "" if method.name in agg.index else bench.left_out.get(ctx.profile, "no done runs yet")]
            row = {"mask": MASKS[method.mask(bench)], "home": method.name in bench.home_methods,
                   "lambda": "" if lam is None else f"{lam:g}", "note": "; ".join(n for n in notes if n)}
            if method.name in agg.index:
                row |= agg.loc[method.name].to_dict()
        else:
            row = {"mask": "", "home": False, "lambda": "", "note": f"no cell: {bench.not_hosted[method.name]}"}
        rows.append({"benchmark": bench.name, "method": method.name, "metric": bench.metric, **row})
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    worst, best = bench.scale
    table["rank"] = table["shifted_mean"].rank(ascending=best < worst, method="min")
    return table


def failures(mains: list[PlannedRun], method: str, store: RunStore) -> str:
    """How many of the method's runs failed, and the first one's error (a NaN loss: the method diverged there)."""
    failed = [r for r in (store.record(run.config) for run in mains if run.cell["method"] == method)
              if r.state() == FAILED]
    if not failed:
        return ""
    seeds = sum(run.cell["method"] == method for run in mains)
    return f"{len(failed)} of {seeds} runs failed ({failed[0].failure()})"


def goodness(bench: Benchmark, values: Any) -> Any:
    """`values` of the benchmark's metric on its scale: 0 at its worst value, 1 at its best (the heatmap's colour)."""
    worst, best = bench.scale
    return (values - worst) / (best - worst)


PROTOCOL = ("each benchmark keeps its home paper's data, model, recipe, metric and selection rule; each method keeps "
            "its home paper's hyperparameters; its lambda is chosen by the benchmark's home protocol over the method's "
            "home grid; home cells are the paper artefacts' own runs")


def _provenance(ctx: Context, name: str, runs: list[PlannedRun], store: RunStore, benches: list[Benchmark]
                ) -> dict[str, Any]:
    """The shared provenance with the protocol as its note (the report shows it), and which synth2 data was read."""
    from repro.papers.actdiff.data_synth2_files import describe
    from repro.runs.prepared import prepared_root

    extra = {"synthetic_data": describe(SYNTH2.plain(ctx, 0).config.data, prepared_root(ctx.runs_dir))} \
        if SYNTH2 in benches else {}
    budgets = {b.name: b.budget[ctx.profile][1] for b in benches if ctx.profile in b.budget}
    note = f"protocol: {PROTOCOL}. " + " ".join(f"{b.name}: {b.protocol}." for b in benches) + "".join(
        f" {name}'s budget at this profile: {why}." for name, why in budgets.items())
    return artefact_provenance(ctx, name, runs, store, note=note, seeds_per_cell={b.name: n_seeds(ctx, b)
                                                                                    for b in benches},
                               masks=MASKS, **extra)


def _bars(ax: Any, table: pd.DataFrame, bench: Benchmark, title: str) -> None:
    """The shifted-test metric per method with its 95 % interval; methods without a cell left empty."""
    x = np.arange(len(table))
    mean = table["shifted_mean"].to_numpy(float)
    low = np.nan_to_num(mean - table["shifted_ci_low"].to_numpy(float))
    high = np.nan_to_num(table["shifted_ci_high"].to_numpy(float) - mean)
    colours = ["tab:orange" if home else "tab:blue" for home in table["home"]]
    ax.bar(x, np.nan_to_num(mean), yerr=[low, high], capsize=3, color=colours)
    for i in np.flatnonzero(np.isnan(mean)):
        ax.text(i, 0.02, "no cell", rotation=90, ha="center", va="bottom", fontsize=8, color="grey")
    ax.set_xticks(x, table["method"], rotation=45, ha="right")
    ax.set_ylim(*sorted(bench.scale))
    ax.set_ylabel(f"shifted-test {bench.metric} (95 % CI)")
    ax.set_title(title)


def benchmark_table(name: str, ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """`repro cross <benchmark>`: its CSV table and bar figure (orange: home cells)."""
    bench = BENCHMARKS[name]
    table = bench_frame(ctx, bench, runs, store)
    prov = _provenance(ctx, name, runs, store, [bench])
    path = write_table(table, output_path(ctx, name, "table"), prov)
    fig, axes = new_figure(1, 1, (8, 5))
    _bars(axes[0][0], table, bench, f"{name} ({bench.home}'s benchmark), {ctx.profile} profile; orange = home cell")
    fig.subplots_adjust(bottom=0.3)  # the rotated method names inside the figure, the profile stamp below them
    arrays = {c: table[c].to_numpy(float) for c in ("shifted_mean", "shifted_ci_low", "shifted_ci_high")}
    return [path, save_figure(fig, output_path(ctx, name, "figure"), prov, arrays)]


def matrix(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """`repro cross matrix` (and `all`): every benchmark's rows in one CSV, the benchmarks without a page here (not
    in this release, left out by the profile, data absent) with their reason, and a heatmap of the shifted-test
    metric (methods x benchmarks, coloured from its worst (0) to its best (1) value; home cells marked with *)."""
    benches = [b for b in BENCHMARKS.values() if absent(ctx, b) is None]
    table = pd.concat([bench_frame(ctx, b, runs, store) for b in benches], ignore_index=True)
    why = {**{b.name: absent(ctx, b) for b in BENCHMARKS.values() if b not in benches}, **BENCHMARKS_NOT_YET}
    missing = pd.DataFrame([{"benchmark": name, "method": "", "home": False, "note": note}
                            for name, note in why.items()]).reindex(columns=COLUMNS)
    prov = _provenance(ctx, "matrix", runs, store, benches)
    path = write_table(pd.concat([table, missing], ignore_index=True), output_path(ctx, "matrix", "table"), prov)
    grid = table.pivot(index="method", columns="benchmark", values="shifted_mean").reindex(
        index=list(dict.fromkeys(table["method"])), columns=[b.name for b in benches])
    home = table.pivot(index="method", columns="benchmark", values="home").reindex_like(grid)
    colour = np.stack([goodness(b, grid[b.name].to_numpy(float)) for b in benches], axis=1)
    fig, axes = new_figure(1, 1, (2 + 1.5 * len(benches), 6))
    ax = axes[0][0]
    image = ax.imshow(colour, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for (i, j), value in np.ndenumerate(grid.to_numpy(float)):
        text = "n/a" if value != value else f"{value:.2f}{'*' if home.iat[i, j] else ''}"
        ax.text(j, i, text, ha="center", va="center",
                color="black" if value != value or colour[i, j] >= 0.6 else "white")
    ax.set_xticks(range(len(grid.columns)), [f"{b.name}\n({b.metric})" for b in benches])
    ax.set_yticks(range(len(grid.index)), grid.index)
    ax.set_title(f"shifted-test metric ({ctx.profile}; * home cell)")
    fig.colorbar(image, ax=ax, fraction=0.05, label="0 = the metric's worst value, 1 = its best")
    arrays = {"shifted_mean": grid.to_numpy(float), "colour": colour}
    return [path, save_figure(fig, output_path(ctx, "matrix", "figure"), prov, arrays)]
