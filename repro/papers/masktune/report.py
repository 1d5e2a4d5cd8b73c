"""MaskTune artefacts: Tables 1-4 (published rows quoted and marked so, ours reproduced beside them) and
Figures 2-3 (biased-MNIST bars with XGradCAM panels; CelebA and Waterbirds panels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from repro.papers import Context, PlannedRun, Tolerance
from repro.report.artefacts import artefact_provenance, done_records, output_path, per_run_frame
from repro.report.figures import new_figure, save_figure
from repro.report.tables import aggregate, published_test, read_published, write_table
from repro.report.claims import Claim, Compare, evaluate_claims, report_claims, seeds_by
from repro.runs.store import RunStore

TOLERANCE = Tolerance(abs=2.0)  # accuracy points, plus 2 published std
QUOTED, OURS = "quoted from the paper", "reproduced"
VARIANTS = ("original", "mixed_same", "mixed_rand", "only_fg")


def _model_metrics(res: dict[str, Any]) -> dict[str, Any]:
    """best_erm's metrics for an ERM run, the finetuned model's for the others (§5.4)."""
    return res["best"] if res["stage"] == "erm" else res["final"]


def _versus(row: dict[str, Any], value: str, published: str, published_std: str) -> dict[str, Any]:
    """diff, within-tolerance and the Welch test (`published_test`; the paper states no number of seeds) of a
    reproduced mean against a published value."""
    pub = pd.to_numeric(pd.Series([published]), errors="coerce")[0]
    pstd = pd.to_numeric(pd.Series([published_std]), errors="coerce")[0]
    mean = row.get(f"{value}_mean", np.nan)
    diff = mean - pub
    p, test = published_test(mean, row.get(f"{value}_std", np.nan), row.get(f"{value}_n", np.nan), pub, pstd, np.nan)
    return {f"{value}_diff": diff, f"{value}_within_tol": "" if diff != diff else TOLERANCE.within(diff, pstd),
            f"{value}_p_published": p, f"{value}_published_test": test}


def _note(ctx: Context) -> str:
    return ("" if ctx.profile == "paper" else
            f"{ctx.profile} profile: reduced epochs and images, not comparable with the paper's numbers")


def _write(ctx: Context, name: str, table: pd.DataFrame, runs: list[PlannedRun], store: RunStore, show: list[str],
           **extra: Any) -> Path:
    """Write the table with provenance and print the columns `show` (those present)."""
    prov = artefact_provenance(ctx, name, runs, store, std_ddof=ctx.switches["std_ddof"], note=_note(ctx), **extra)
    path = write_table(table, output_path(ctx, name, "table"), prov)
    from rich.console import Console

    print(table[[c for c in show if c in table]].to_string(index=False, max_colwidth=48, float_format="%.2f"))
    if _note(ctx):
        Console().print(f"[yellow]{_note(ctx)}[/yellow]")
    return path


def _details(runs: list[PlannedRun], store: RunStore) -> dict[str, Any]:
    """Each dataset's loader details (subset notes, split rules) from its runs."""
    return {r.cell["dataset"]: rec.result().get("details", {}) for r, rec in done_records(runs, store)}


# ---------------------------------------------------------------- Tables 1 and 2: group metrics


def _group_table(ctx: Context, name: str, runs: list[PlannedRun], store: RunStore, ours_row: str) -> list[Path]:
    """The published rows (quoted), the row `ours_row` with our MaskTune beside it, and our ERM."""
    frame = per_run_frame(runs, store, lambda res: {
        "worst_group": _model_metrics(res)["test"]["worst_group_acc"],
        "average": _model_metrics(res)["test"]["average_acc"],
        **{f"group{g}": a for g, a in enumerate(_model_metrics(res)["test"]["group_acc"])}})
    values = ["worst_group", "average", "group0", "group1", "group2", "group3"]
    stats = {m: row for m, row in aggregate(frame, ["method"], [v for v in values if v in frame] or values,
                                         ctx.switches["std_ddof"]).set_index("method").iterrows()}
    published = read_published("masktune", name)
    rows = []
    for _, p in published.iterrows():
        row: dict[str, Any] = {"method": p["method"], "source": QUOTED,
                               **{c: p[c] for c in published.columns if c not in ("method", "bold")}}
        if p["method"].startswith(ours_row) and "masktune" in stats:
            row |= {"source": f"{QUOTED}; ours beside it", **stats["masktune"].to_dict()}
            row |= _versus(row, "worst_group", p["worst_group"], p["worst_group_std"])
            row |= _versus(row, "average", p["average"], p["average_std"])
        if name == "table2" and p["method"].startswith("ERM") and "erm" in stats:  # the authors' own ERM run
            row |= {"source": f"{QUOTED}; ours beside it", **stats["erm"].to_dict()}
            row |= _versus(row, "worst_group", p["worst_group"], p["worst_group_std"])
            row |= _versus(row, "average", p["average"], p["average_std"])
        rows.append(row)
    if name == "table1" and "erm" in stats:
        rows.append({"method": "ERM (ours, best_erm)", "source": OURS, "train_group_labels": "No",
                     "val_group_labels": "No", **stats["erm"].to_dict()})
    show = ["method", "worst_group", "worst_group_mean", "worst_group_std", "average", "average_mean", "average_std"]
    return [_write(ctx, name, pd.DataFrame(rows), runs, store, show, datasets=_details(runs, store),
                   groups="group id = 2*spurious + target (CelebA: 2*Male + Blond; Waterbirds: 2*place + y)",
                   average="plain test accuracy (D-15)")]


def table1(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    return _group_table(ctx, "table1", runs, store, "MaskTune")


def table2(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    return _group_table(ctx, "table2", runs, store, "MaskTune")


# ---------------------------------------------------------------- Table 3: Background Challenge


def table3(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    frame = per_run_frame(runs, store, lambda res: {v: _model_metrics(res)[f"test_{v}"]["accuracy"] for v in VARIANTS})
    stats = {m: row for m, row in aggregate(frame, ["method"], list(VARIANTS), ctx.switches["std_ddof"])
             .set_index("method").iterrows()}
    published = read_published("masktune", "table3")
    rows = []
    for _, p in published.iterrows():
        row: dict[str, Any] = {**p.to_dict(), "source": QUOTED}
        if p["method_reconstructed"] == "MaskTune" and "masktune" in stats:
            row |= {"source": f"{QUOTED}; ours beside it", **stats["masktune"].to_dict()}
            for v in VARIANTS:
                row |= _versus(row, v, p[v], "")
        rows.append(row)
    if "erm" in stats:
        rows.append({"method_reconstructed": "ERM (ours, best_erm)", "source": OURS, **stats["erm"].to_dict()})
    show = ["method_reconstructed", *(c for v in VARIANTS for c in (v, f"{v}_mean"))]
    return [_write(ctx, "table3", pd.DataFrame(rows), runs, store, show, datasets=_details(runs, store))]


# ---------------------------------------------------------------- Table 4: selective classification

T4_NAMES = {"cifar10": "CIFAR-10", "svhn": "SVHN", "cats_dogs": "Cats vs Dogs"}


def table4(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    rows = []
    for r, rec in done_records(runs, store):
        res = rec.result()
        if r.cell["method"] != "masktune":
            continue
        erm = store.root / "masktune" / res["erm_run"] / "result.json"
        erm_acc = pd.read_json(erm, typ="series")["best"]["test"]["accuracy"] if erm.exists() else np.nan
        for which in ("masktune", "sr"):
            for m in res["selective"][which]:
                rows.append({"dataset": T4_NAMES[r.cell["dataset"]], "target_coverage": f"{m['target_coverage']:g}%",
                             "seed": r.cell["seed"], f"{which}_cov": m["coverage"], f"{which}_err": m["error"],
                             "erm_accuracy": erm_acc, "finetuned_accuracy": res["final"]["test"]["accuracy"]})
    frame = pd.DataFrame(rows)
    values = ["masktune_cov", "masktune_err", "sr_cov", "sr_err", "erm_accuracy", "finetuned_accuracy"]
    if not frame.empty:
        frame = frame.groupby(["dataset", "target_coverage", "seed"], sort=False).first().reset_index()
    stats = aggregate(frame, ["dataset", "target_coverage"], values, ctx.switches["std_ddof"])
    published = read_published("masktune", "table4")
    table = published.rename(columns={c: f"{c}_published" for c in published.columns
                                      if c not in ("dataset", "target_coverage")})
    table = table.merge(stats.rename(columns={c: f"ours_{c}" for c in stats.columns
                                              if c not in ("dataset", "target_coverage")}),
                        on=["dataset", "target_coverage"], how="left")
    for v in ("cov", "err"):
        versus = [_versus(row, f"ours_masktune_{v}", row[f"masktune_{v}_published"],
                          row[f"masktune_{v}_std_published"])
                  for row in table.to_dict(orient="records")]
        for k in (f"ours_masktune_{v}_{s}" for s in ("diff", "within_tol", "p_published", "published_test")):
            table[k] = [x[k] for x in versus]
    table["source"] = "SR, SN, DG, OSP and masktune_*_published quoted from the paper; ours_* reproduced " \
                      "(ours_sr_* = SR from our best_erm)"
    show = ["dataset", "target_coverage", "masktune_cov_published", "ours_masktune_cov_mean", "masktune_err_published",
            "ours_masktune_err_mean", "ours_sr_cov_mean", "ours_sr_err_mean"]
    return [_write(ctx, "table4", table, runs, store, show, datasets=_details(runs, store),
                   selective_score=ctx.switches["selective_score"])]


# ---------------------------------------------------------------- Figures 2 and 3

FIGURE2_SENTENCE = "As shown in Figure 2, *MaskTune* outperforms other methods by a large margin on both test sets."
FIGURE2_CLAIMS: dict[str, Claim] = {
    f"MaskTune above {other} on both test sets": Claim(FIGURE2_SENTENCE, tuple(
        Compare(("MaskTune", t, "accuracy"), ">", (other, t, "accuracy")) for t in ("original", "biased")))
    for other in ("ERM", "RandMask")}
FIG2_METHODS = {"erm": "ERM", "randmask": "RandMask", "masktune": "MaskTune"}
FIG2_GROUPS = ("clean", "squared")  # biased-MNIST test group ids 0 and 1
FIG2_VALUES = ["accuracy", *(f"accuracy_{g}" for g in FIG2_GROUPS)]


def _fig2_metrics(res: dict[str, Any]) -> dict[str, float]:
    """Per test set: the accuracy and the per-group accuracies (NaN for a group absent from the test set)."""
    out = {}
    for t in ("original", "biased"):
        m = _model_metrics(res)[f"test_{t}"]
        out[t] = m["accuracy"]
        for g, name in enumerate(FIG2_GROUPS):
            out[f"{t}/accuracy_{name}"] = m["group_acc"][g] if "group_acc" in m else np.nan
    return out


def _fig2_long(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per method, seed and test set with the FIG2_VALUES columns."""
    if frame.empty:
        return pd.DataFrame(columns=["method", "seed", "test_set", *FIG2_VALUES])
    rows = [{"method": FIG2_METHODS[r["method"]], "seed": r["seed"], "test_set": t, "accuracy": r[t],
             **{f"accuracy_{g}": r[f"{t}/accuracy_{g}"] for g in FIG2_GROUPS}}
            for r in frame.to_dict(orient="records") for t in ("original", "biased")]
    return pd.DataFrame(rows)


def _bars_caption(n: pd.Series, ddof: int) -> str:
    """What the bars and error bars are, with the number of seeds."""
    counts = sorted({int(k) for k in n.dropna()})
    seeds = "/".join(map(str, counts)) or "0"
    if counts and min(counts) >= 2:
        return f"bars: mean \u00b1 {'sample ' if ddof == 1 else ''}std (ddof {ddof}) over n = {seeds} seeds"
    return f"bars: mean over n = {seeds} seed(s); no error bars (n < 2)"


def figure2(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    ddof = ctx.switches["std_ddof"]
    long = _fig2_long(per_run_frame(runs, store, _fig2_metrics))
    stats = aggregate(long, ["method", "test_set"], FIG2_VALUES, ddof)
    table = read_published("masktune", "figure2").rename(columns={"accuracy": "accuracy_published"})
    table = table.merge(stats, on=["method", "test_set"], how="left")
    checked = evaluate_claims(FIGURE2_CLAIMS, seeds_by(long, ["method", "test_set"], ["accuracy"]))
    fig, axes = new_figure(1, 2, (13, 4.6))
    ax = axes[0][0]
    x = np.arange(3)
    for i, t in enumerate(("original", "biased")):
        sub = table[table["test_set"] == t].set_index("method").reindex(FIG2_METHODS.values())
        errors = sub["accuracy_std"].where(sub["accuracy_n"] >= 2)
        ax.bar(x + (i - 0.5) * 0.38, sub["accuracy_mean"], 0.38, label=f"{t} test")
        if errors.notna().any():
            ax.errorbar(x + (i - 0.5) * 0.38, sub["accuracy_mean"], yerr=errors, fmt="none", ecolor="black", capsize=3)
    ax.set_xticks(x, list(FIG2_METHODS.values()))
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(_bars_caption(table["accuracy_n"], ddof), fontsize=8)
    ax.legend()
    panels = _cam_panel(axes[0][1], runs, store, "biased_mnist", _biased_examples)
    details = _details(runs, store)
    fig.suptitle(f"Biased MNIST ({ctx.profile} profile; {details.get('biased_mnist', {}).get('note', '')})", fontsize=9)
    prov = artefact_provenance(ctx, "figure2", runs, store, datasets=details, note=_note(ctx),
                               published="no numbers published (D-22): qualitative statements only",
                               groups="accuracy_clean / accuracy_squared: the test images without / with the square")
    arrays = {"accuracy_mean": table["accuracy_mean"].to_numpy(float), "accuracy_std": table["accuracy_std"].to_numpy(float),
              **panels}
    path = save_figure(fig, output_path(ctx, "figure2", "figure"), prov, arrays)
    csv = write_table(table, path.with_suffix(".csv"), prov)
    from rich.console import Console

    shown = ["method", "test_set", *(f"{v}_mean" for v in FIG2_VALUES), "accuracy_std", "accuracy_n"]
    Console().print(table[shown].to_string(index=False, float_format="%.2f"))
    return [path, csv, report_claims(ctx, "figure2", checked, prov)]


def _biased_examples(split: Any) -> np.ndarray:
    """Fixed picks from the biased test set, both groups: the first three squared and two clean images."""
    return np.concatenate([np.flatnonzero(split.groups == 1)[:3], np.flatnonzero(split.groups == 0)[:2]])


def _group_examples(split: Any) -> np.ndarray:
    """The first test image of each group, minority groups included (§7.6)."""
    return np.array([np.flatnonzero(split.groups == g)[0] for g in range(4) if (split.groups == g).any()])


def _cam_panel(ax: Any, runs: list[PlannedRun], store: RunStore, dataset: str,
               pick: Callable[[Any], np.ndarray]) -> dict[str, np.ndarray]:
    """Rows: test images (true class), best_erm's XGradCAM overlay, the finetuned model's, each labelled with the
    model's prediction; a colour bar for the CAM scale; from seed 0's runs."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    from repro.papers.masktune.cams import overlays

    pair = {r.cell["method"]: rec for r, rec in done_records(runs, store)
            if r.cell["dataset"] == dataset and r.cell["seed"] == 0}
    if not {"erm", "masktune"} <= set(pair):
        ax.set_axis_off()
        ax.set_title("XGradCAM panel: runs not done")
        return {}
    images, erm, tuned, preds = overlays(pair["erm"], pair["masktune"], dataset, pick)
    grid = np.concatenate([np.concatenate(list(row), axis=1) for row in (images, erm, tuned)], axis=0)
    ax.imshow(grid)
    h, w = images.shape[1:3]
    for row, key in enumerate(("labels", "ERM", "MaskTune")):
        for col, c in enumerate(preds[key]):
            ax.text(col * w + 1, row * h + 1, f"{'y' if key == 'labels' else 'pred'} {int(c)}", color="white",
                    fontsize=7, va="top", bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "lw": 0})
    ax.set_yticks([(i + 0.5) * h for i in range(3)], ["input", "ERM", "MaskTune"])
    ax.set_xticks([])
    ax.set_title(f"XGradCAM ({dataset}, seed 0)")
    plt.colorbar(plt.cm.ScalarMappable(Normalize(0, 1), "jet"), ax=ax, fraction=0.03, label="XGradCAM (normalised)")
    return {f"{dataset}_images": images, f"{dataset}_erm_overlay": erm, f"{dataset}_masktune_overlay": tuned,
            **{f"{dataset}_pred_{k.lower()}": v for k, v in preds.items()}}


def figure3(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    fig, axes = new_figure(1, 2, (14, 5))
    arrays: dict[str, np.ndarray] = {}
    for ax, dataset in zip(axes[0], ("celeba", "waterbirds")):
        arrays |= _cam_panel(ax, runs, store, dataset, _group_examples)
    fig.suptitle(f"XGradCAM of ERM and MaskTune, one test image per group ({ctx.profile} profile)", fontsize=9)
    prov = artefact_provenance(ctx, "figure3", runs, store, note=_note(ctx), datasets=_details(runs, store))
    return [save_figure(fig, output_path(ctx, "figure3", "figure"), prov, arrays)]
