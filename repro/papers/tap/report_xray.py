"""TAP Figures 6 (PNEU, F1) and 7 (KNEE, MAE): per architecture and method, the metric on the correlated test
set and Delta = permuted - correlated (spec §1.3, §7), for the dataset-level metric and the code's variant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from repro.papers import Context, PlannedRun
from repro.papers.tap import mnist as paper
from repro.papers.tap import xray
from repro.report.artefacts import artefact_provenance, output_path, per_run_frame
from repro.report.figures import new_figure, save_figure
from repro.report.tables import aggregate, write_table
from repro.report.claims import Rules, check_expectations, report_claims
from repro.papers.tap.report import lambda_text
from repro.runs.store import RunStore

# The stated outcomes of Figs. 6 and 7 (spec §1.3) as checkable rules on the means, v[arch, method, column]
# with column "metric" (correlated test) or "delta"; the thresholds are ours (the paper prints no values).
SPURIOUS_F1, SMALL_F1, CLOSE = -0.1, 0.05, 0.01
FIGURE6_EXPECTATIONS: Rules = {
    **{f"{a}: No XS has the highest correlated F1 (within {CLOSE})":
       (lambda v, a=a: v[a, "No XS", "metric"] >= max(v[a, m, "metric"] for m in paper.METHODS) - CLOSE)
       for a in xray.ARCHS},
    **{f"{a}: No XS collapses on the permuted test (Delta-F1 < -0.2)":
       (lambda v, a=a: v[a, "No XS", "delta"] < -0.2) for a in xray.ARCHS},
    f"vgg16: RBR is spurious (Delta-F1 < {SPURIOUS_F1})": lambda v: v["vgg16", "RBR", "delta"] < SPURIOUS_F1,
    f"densenet121: RRR is spurious (Delta-F1 < {SPURIOUS_F1})": lambda v: v["densenet121", "RRR", "delta"] < SPURIOUS_F1,
    **{f"{a}: TAP |Delta-F1| small (< {SMALL_F1})": (lambda v, a=a: abs(v[a, "TAP", "delta"]) < SMALL_F1)
       for a in xray.ARCHS},
    **{f"{a}: TAP F1 close to Base (within {SMALL_F1})":
       (lambda v, a=a: abs(v[a, "TAP", "metric"] - v[a, "Base", "metric"]) < SMALL_F1) for a in xray.ARCHS},
}
SPURIOUS_MAE, SMALL_MAE = 0.1, 0.1
FIGURE7_EXPECTATIONS: Rules = {
    **{f"{a}: {m} has a lower correlated MAE than TAP and Base":
       (lambda v, a=a, m=m: v[a, m, "metric"] < min(v[a, "TAP", "metric"], v[a, "Base", "metric"]))
       for a in xray.ARCHS for m in ("RRR", "RBR")},
    **{f"{a}: {m} Delta-MAE clearly positive (> {SPURIOUS_MAE})":
       (lambda v, a=a, m=m: v[a, m, "delta"] > SPURIOUS_MAE) for a in xray.ARCHS for m in ("RRR", "RBR")},
    **{f"{a}: No XS has the lowest correlated MAE (within {CLOSE})":
       (lambda v, a=a: v[a, "No XS", "metric"] <= min(v[a, m, "metric"] for m in paper.METHODS) + CLOSE)
       for a in xray.ARCHS},
    **{f"{a}: No XS is spurious (Delta-MAE > 0.3)": (lambda v, a=a: v[a, "No XS", "delta"] > 0.3)
       for a in xray.ARCHS},
    **{f"{a}: TAP |Delta-MAE| small (< {SMALL_MAE})": (lambda v, a=a: abs(v[a, "TAP", "delta"]) < SMALL_MAE)
       for a in xray.ARCHS},
    **{f"{a}: TAP MAE close to Base (within {SMALL_MAE})":
       (lambda v, a=a: abs(v[a, "TAP", "metric"] - v[a, "Base", "metric"]) < SMALL_MAE) for a in xray.ARCHS},
}
EXPECTATIONS = {"pneu": FIGURE6_EXPECTATIONS, "knee": FIGURE7_EXPECTATIONS}
COLOURS = dict(zip(paper.METHODS, ("tab:gray", "tab:red", "tab:orange", "tab:purple", "tab:blue")))


def main_runs(ctx: Context, dataset: str, runs: list[PlannedRun]) -> list[PlannedRun]:
    """The figure's runs: each method with its chosen lambda (Base, No XS: none), seeds below the count."""
    seeds = ctx.seeds or xray.setting(ctx, dataset, "seeds")
    chosen = {a: xray.chosen_xray_lambdas(ctx, dataset, a) for a in xray.setting(ctx, dataset, "archs")}
    return list({r.config.key: r for r in runs if r.cell["arch"] in chosen and r.cell["seed"] < seeds
                 and r.cell["lambda"] == chosen[r.cell["arch"]].get(r.cell["method"])}.values())


def summary(ctx: Context, dataset: str, runs: list[PlannedRun], store: RunStore) -> pd.DataFrame:
    """Per (arch, method): mean, sample std and n over seeds of the metric and of Delta, both variants."""
    metric = xray.SETTINGS[dataset]["metric"]
    names = (metric, f"{metric}_code")

    def values(res: dict) -> dict[str, float]:
        cor, perm = res["final"]["test_cor"], res["final"]["test"]
        return {**{n: cor[n] for n in names}, **{f"delta_{n}": perm[n] - cor[n] for n in names}}

    frame = per_run_frame(main_runs(ctx, dataset, runs), store, values)
    cols = [*names, *(f"delta_{n}" for n in names)]
    archs = xray.setting(ctx, dataset, "archs")
    grid = pd.MultiIndex.from_product([archs, paper.METHODS], names=["arch", "method"])
    if frame.empty:
        return pd.DataFrame(index=grid, columns=["lambda", *(f"{c}_{s}" for c in cols for s in ("mean", "std", "n"))],
                            dtype=float).reset_index()
    agg = aggregate(frame, ["arch", "method"], cols).set_index(["arch", "method"])
    lams = frame.groupby(["arch", "method"])["lambda"].first()
    agg.insert(0, "lambda", lams.map(lambda_text))
    return agg.reindex(grid).reset_index()


def figure(ctx: Context, runs: list[PlannedRun], store: RunStore, dataset: str, name: str) -> list[Path]:
    """Bars per architecture group and method: metric on the correlated test (left) and Delta (right); the
    dataset-level metric on the top row, the code's batch-mean variant (D-15, D-16) below."""
    title, metric = xray.SETTINGS[dataset]["title"], xray.SETTINGS[dataset]["metric"]
    table = summary(ctx, dataset, runs, store)
    archs = list(dict.fromkeys(table["arch"]))
    means = {(a, m, col): v for a, m, mv, dv in zip(table["arch"], table["method"], table[f"{metric}_mean"],
                                                    table[f"delta_{metric}_mean"]) for col, v in (("metric", mv), ("delta", dv))}
    checks = check_expectations(EXPECTATIONS[dataset], means)
    fig, axes = new_figure(2, 2, (12, 8))
    x, width = np.arange(len(archs)), 0.8 / len(paper.METHODS)
    arrays = {}
    for row, variant in enumerate((metric, f"{metric}_code")):
        for col, (column, label) in enumerate(((variant, f"{variant} (correlated test)"),
                                               (f"delta_{variant}", f"Delta-{variant} (permuted - correlated)"))):
            ax = axes[row][col]
            for k, method in enumerate(paper.METHODS):
                part = table[table["method"] == method].set_index("arch").reindex(archs)
                mean, std = part[f"{column}_mean"].to_numpy(float), part[f"{column}_std"].to_numpy(float)
                ax.bar(x + (k - 2) * width, mean, width, yerr=np.nan_to_num(std), capsize=3, label=method,
                       color=COLOURS[method])
                arrays[f"{column}_{method}_mean"], arrays[f"{column}_{method}_std"] = mean, std
            ax.set_xticks(x, archs)
            ax.set_title(label)
            ax.axhline(0, color="black", lw=0.8)
    axes[0][0].legend(fontsize=8)
    note = "" if ctx.init == "imagenet" else f", init={ctx.init} (not paper-faithful)"
    fig.suptitle(f"{title}, ground-truth masks ({ctx.profile} profile{note})")
    notes = ([] if ctx.init == "imagenet" else
             [f"init={ctx.init}: models trained from random init, not paper-faithful (the paper fine-tunes "
              "ImageNet weights)"])
    prov = artefact_provenance(ctx, name, runs, store, expectations=checks, notes=notes,
                               lambdas={a: xray.chosen_xray_lambdas(ctx, dataset, a) for a in archs},
                               values=table.replace({np.nan: None}).to_dict(orient="records"))
    path = save_figure(fig, output_path(ctx, name, "figure"), prov, arrays)
    csv = write_table(table, path.with_suffix(".csv"), prov)
    _print(table, metric)
    return [path, csv, report_claims(ctx, name, checks, prov)]


def _print(table: pd.DataFrame, metric: str) -> None:
    from rich.console import Console

    console = Console()
    for _, r in table.iterrows():
        console.print(f"{r['arch']:12s} {r['method']:6s} {metric} {r[f'{metric}_mean']:.3f} ± {r[f'{metric}_std']:.3f}  "
                      f"Delta {r[f'delta_{metric}_mean']:+.3f} ± {r[f'delta_{metric}_std']:.3f}  "
                      f"(code {r[f'{metric}_code_mean']:.3f}, Delta {r[f'delta_{metric}_code_mean']:+.3f})")


def figure6(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Figure 6: PNEU, F1 (pneumonia positive) and Delta-F1."""
    return figure(ctx, runs, store, "pneu", "figure6")


def figure7(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Figure 7: KNEE, MAE of the KL grade and Delta-MAE."""
    return figure(ctx, runs, store, "knee", "figure7")
