"""TAP Setting 2 artefacts: Figure 8 (teacher-mask precision and recall vs tau, with the random baseline),
Figure 9 (TAP with GT, random and teacher masks) and the numbers the text states (teacher F-scores, the
random-annotation overlap), `tables/tap/text.csv`."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from repro.papers import PUBLISHED, Context, PlannedRun
from repro.papers.tap import teachers as teach
from repro.papers.tap.data_tagged_xray import downscale_mask
from repro.papers.tap import xray
from repro.report.artefacts import artefact_provenance, done_records, output_path, per_run_frame
from repro.report.figures import new_figure, save_figure
from repro.report.tables import aggregate, write_table
from repro.report.claims import Checked, RuleClaim, report_claims
from repro.runs.store import RunStore
from repro.papers.tap.teacher_saliency import per_image_overlap, percentile_mask, random_saliency

CHUNK = 256  # images per overlap step
RANDOM_SEED = 0  # the random baseline of Figure 8 and the text


def _teacher_rows(frame: pd.DataFrame) -> pd.DataFrame | None:
    """The teachers' rows sorted by tau, or None with fewer than two taus."""
    teachers = frame[frame["annotation"] != "rnd"].sort_values("tau")
    return None if teachers.empty or teachers["tau"].nunique() < 2 else teachers


def _recall_rises(frame: pd.DataFrame) -> bool | None:
    """Recall strictly increasing in tau for every teacher (nested masks never lower it: equal recall fails)."""
    teachers = _teacher_rows(frame)
    return None if teachers is None else all(bool((np.diff(g["recall"]) > 0).all())
                                             for _, g in teachers.groupby("annotation"))


def _precision_falls(frame: pd.DataFrame) -> bool | None:
    """Precision strictly decreasing in tau for every teacher."""
    teachers = _teacher_rows(frame)
    return None if teachers is None else all(bool((np.diff(g["precision"]) < 0).all())
                                             for _, g in teachers.groupby("annotation"))


def _beats_random(frame: pd.DataFrame) -> bool | None:
    """Every teacher's precision and recall above the random masks' at the same tau."""
    rnd = frame[frame["annotation"] == "rnd"].set_index("tau")
    teachers = frame[frame["annotation"] != "rnd"]
    if rnd.empty or teachers.empty:
        return None
    return bool(all(row.precision > rnd.loc[row.tau, "precision"] and row.recall > rnd.loc[row.tau, "recall"]
                    for row in teachers.itertuples()))


def _teachers_close(frame: pd.DataFrame) -> bool | None:
    """At every tau, the smallest-fraction teacher's precision and recall nearer the largest-fraction teacher's than
    the random masks'."""
    fracs = sorted(frame["frac"].dropna().unique())
    rnd = frame[frame["annotation"] == "rnd"].set_index("tau")[["precision", "recall"]]
    if len(fracs) < 2 or rnd.empty:
        return None
    small, large = (frame[frame["frac"] == f].set_index("tau")[["precision", "recall"]] for f in (fracs[0], fracs[-1]))
    return bool(((small - large).abs() < (small - rnd.reindex(small.index)).abs()).all().all())


# Fig. 8's stated outcome (spec §1.3), checked per dataset on the precision/recall rows (one computation per
# teacher and tau: no seeds to test across).
FIGURE8_SENTENCE = ("The annotations are better than random (i.e., recall and precision of circa 1.9%), and raising τ "
                    "increases the recall and reduces precision.")
FIGURE8_CLAIMS: dict[str, RuleClaim] = {
    "teacher masks beat random": RuleClaim(
        FIGURE8_SENTENCE, "precision and recall above the random masks' for every teacher and tau", _beats_random),
    "raising tau increases recall": RuleClaim(
        FIGURE8_SENTENCE, "recall strictly increasing in tau for every teacher", _recall_rises),
    "raising tau reduces precision": RuleClaim(
        FIGURE8_SENTENCE, "precision strictly decreasing in tau for every teacher", _precision_falls),
    "the 1% teacher is almost as good as the 10%": RuleClaim(
        "Interestingly, annotations from the 1%-teacher are almost as good as those from the 10%-teacher.",
        "at every tau the smallest-fraction teacher's precision and recall are nearer the largest's than random's",
        _teachers_close),
}


def check(claims: Mapping[str, RuleClaim], prefix: str, *data: Any) -> Checked:
    """Each claim's rule on `data` (whole frames: the statements are about trends over tau, teachers and
    architectures), labelled with `prefix`."""
    return {f"{prefix}{label}": (claim, claim.evaluate(*data)) for label, claim in claims.items()}


# ---------------------------------------------------------------- mask overlap (Figure 8, text)


def gt_boxes(ctx: Context, dataset: str, size: int | None) -> torch.Tensor:
    """The tag boxes of every tagged train row (N, h, w) bool, max-pooled to the training size as the loader does."""
    boxes = np.load(xray.prepared_folder(ctx, dataset) / "text" / "train_masks.npy", mmap_mode="r")
    parts = []
    for i in range(0, len(boxes), CHUNK):
        b = torch.from_numpy(np.array(boxes[i:i + CHUNK])).bool().unsqueeze(1)
        parts.append((downscale_mask(b, size) if size else b)[:, 0])
    return torch.cat(parts)


def mask_overlap(gt: torch.Tensor, taus: tuple[float, ...], saliency: np.ndarray | None,
                 tau_mode: str = "percentile") -> list[dict[str, float]]:
    """Per tau: precision and recall of get_mask(saliency) (or, without saliency, of random N(0, 1) masks of
    3 channels seeded with RANDOM_SEED) against `gt`, per image then averaged (§5 Figure 8 computation)."""
    rows = []
    for tau in taus:
        gen = torch.Generator().manual_seed(RANDOM_SEED)
        prec, rec = [], []
        for i in range(0, len(gt), CHUNK):
            g = gt[i:i + CHUNK]
            if saliency is None:
                s = random_saliency((len(g), 3, *g.shape[-2:]), gen).abs().sum(1)
                mask = percentile_mask(s, tau)
            else:
                mask = percentile_mask(torch.from_numpy(np.array(saliency[i:i + CHUNK])), tau, tau_mode)
            p, r = per_image_overlap(mask, g)
            prec.append(p)
            rec.append(r)
        rows.append({"tau": tau, "precision": float(torch.cat(prec).nanmean()),
                     "recall": float(torch.cat(rec).nanmean()), "images": len(gt)})
    return rows


def overlap_frame(ctx: Context, runs: list[PlannedRun], store: RunStore) -> pd.DataFrame:
    """Precision/recall rows per dataset: each done teacher's masks on its students' training rows (against
    the boxes stored with its saliency), and random masks on every tagged train row."""
    taus = teach.setting(ctx, "taus")
    rows = []
    for dataset in sorted({r.cell["dataset"] for r in runs}, key=teach.setting(ctx, "datasets").index):
        gt = gt_boxes(ctx, dataset, xray.setting(ctx, dataset, "image_size"))
        for row in mask_overlap(gt, taus, None):
            rows.append({"dataset": dataset, "annotation": "rnd", "frac": np.nan, **row})
        for run, _ in done_records([r for r in runs if r.cell["dataset"] == dataset], store):
            path = ctx.runs_dir / teach.saliency_file(ctx, run)
            if not path.exists():
                continue
            saliency = np.load(path, mmap_mode="r")
            boxes = np.unpackbits(np.load(teach.boxes_file(path)), axis=-1, count=saliency.shape[-1]).astype(bool)
            for row in mask_overlap(torch.from_numpy(boxes), taus, saliency, ctx.switches["tau_mode"]):
                rows.append({"dataset": dataset, "annotation": run.cell["teacher"], "frac": run.cell["frac"], **row})
    return pd.DataFrame(rows, columns=["dataset", "annotation", "frac", "tau", "precision", "recall", "images"])


def figure8(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Precision (left) and recall (right) vs tau of the teacher masks and random masks, per dataset."""
    frame = overlap_frame(ctx, runs, store)
    names = list(dict.fromkeys(frame["dataset"]))
    checked: Checked = {}
    fig, axes = new_figure(max(1, len(names)), 2, (10, 3.6 * max(1, len(names))))
    for row, dataset in enumerate(names):
        part = frame[frame["dataset"] == dataset]
        checked |= check(FIGURE8_CLAIMS, f"{xray.SETTINGS[dataset]['title']}: ", part)
        for ax, col in zip(axes[row], ("precision", "recall")):
            for name, g in part.groupby("annotation", sort=False):
                ax.plot(g["tau"], g[col], marker="o", ls="--" if name == "rnd" else "-",
                        label=name if name == "rnd" else f"{name} teacher")
            ax.set_xlabel("tau")
            ax.set_title(f"{xray.SETTINGS[dataset]['title']}: {col}")
            ax.legend()
    fig.suptitle(f"Teacher masks vs ground-truth tags, contaminated train split ({ctx.profile} profile)")
    arrays = {c: frame[c].to_numpy(dtype=float) for c in ("frac", "tau", "precision", "recall")}
    prov = artefact_provenance(ctx, "figure8", runs, store,
                               tau_mode=ctx.switches["tau_mode"], random_seed=RANDOM_SEED,
                               values=frame.to_dict(orient="records"))
    path = save_figure(fig, output_path(ctx, "figure8", "figure"), prov, arrays)
    csv = write_table(frame, path.with_suffix(".csv"), prov)
    return [path, csv, report_claims(ctx, "figure8", checked, prov)]


# ---------------------------------------------------------------- Figure 9 and the text numbers


def student_frame(runs: list[PlannedRun], store: RunStore) -> pd.DataFrame:
    """One row per done student: the dataset's metric on the correlated test set and Delta (permuted - correlated)."""
    students = [r for r in runs if "annotation" in r.cell]

    def values(res: dict[str, Any], metric: str) -> dict[str, float]:
        final = res["final"]
        return {"metric": final["test_cor"][metric], "delta": final["test"][metric] - final["test_cor"][metric]}

    frames = [per_run_frame([r for r in students if r.cell["dataset"] == d], store,
                            lambda res, m=xray.SETTINGS[d]["metric"]: values(res, m))
              for d in dict.fromkeys(r.cell["dataset"] for r in students)]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=["dataset", "arch", "annotation", "tau", "seed", "lambda", "metric", "delta"])
    return pd.concat(frames, ignore_index=True)


def figure9(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """PNEU F1 / Delta-F1 and KNEE MAE / Delta-MAE (final epoch, mean ± std over seeds) per architecture and
    annotation; and `tables/tap/text.csv`."""
    frame = student_frame(runs, store)
    frame["tau"] = frame["tau"].fillna(-1.0)  # GT has no tau; keep it a group
    agg = aggregate(frame, ["dataset", "arch", "annotation", "tau"], ["metric", "delta"]) if len(frame) else frame
    if len(agg):
        agg["tau"] = agg["tau"].where(agg["tau"] >= 0)
        agg["metric_name"] = [xray.SETTINGS[d]["metric"] for d in agg["dataset"]]
    names = list(dict.fromkeys(agg["dataset"])) if len(agg) else []
    fig, axes = new_figure(max(1, len(names)), 2, (12, 3.8 * max(1, len(names))))
    checked: Checked = {}
    for row, dataset in enumerate(names):
        part = agg[agg["dataset"] == dataset]
        _bars(axes[row], part, dataset)
        checked |= check(FIGURE9_CLAIMS[dataset], f"{xray.SETTINGS[dataset]['title']}: ", part,
                         teacher_metrics(runs, store, dataset))
    fig.suptitle(f"TAP with teacher, random and ground-truth masks, final epoch ({ctx.profile} profile)")
    arrays = {f"{c}_{s}": agg[f"{c}_{s}"].to_numpy(dtype=float) for c in ("metric", "delta") for s in ("mean", "std")} \
        if len(agg) else {}
    prov = artefact_provenance(ctx, "figure9", runs, store, student_set=ctx.switches["student_set"],
                               values=agg.to_dict(orient="records") if len(agg) else [])
    path = save_figure(fig, output_path(ctx, "figure9", "figure"), prov, arrays)
    csv = write_table(agg, path.with_suffix(".csv"), prov)
    return [path, csv, report_claims(ctx, "figure9", checked, prov), text_table(ctx, runs, store)]


def _bars(axes: Any, part: pd.DataFrame, dataset: str) -> None:
    """Grouped bars: architectures on x, one bar per annotation (and tau)."""
    archs = list(dict.fromkeys(part["arch"]))
    groups = list(dict.fromkeys(zip(part["annotation"], part["tau"].fillna(-1.0))))
    width = 0.8 / max(1, len(groups))
    metric = xray.SETTINGS[dataset]["metric"]
    for ax, col, title in zip(axes, ("metric", "delta"), (metric, f"Delta-{metric}")):
        for k, (name, tau) in enumerate(groups):
            chosen = (part["annotation"] == name) & (part["tau"].fillna(-1.0) == tau)
            sel = part[chosen].set_index("arch").reindex(archs)
            ax.bar(np.arange(len(archs)) + (k - (len(groups) - 1) / 2) * width, sel[f"{col}_mean"],
                   width, yerr=sel[f"{col}_std"].fillna(0), capsize=2, label=name if tau < 0 else f"{name} tau={tau:g}")
        ax.set_xticks(np.arange(len(archs)), archs)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(f"{xray.SETTINGS[dataset]['title']}: {title}")
    axes[0].legend(fontsize=7)


def _teacher_students(agg: pd.DataFrame) -> pd.DataFrame:
    return agg[~agg["annotation"].isin(["GT", "rnd"])]


def _beside_random(agg: pd.DataFrame, column: str) -> pd.DataFrame:
    """The teacher students' rows with the random-annotation students' `column` mean at the same arch and tau."""
    rnd = agg[agg["annotation"] == "rnd"][["arch", "tau", f"{column}_mean"]]
    return _teacher_students(agg).merge(rnd, on=["arch", "tau"], suffixes=("", "_rnd"))


def _little_sensitivity(agg: pd.DataFrame, _: dict[str, float]) -> bool | None:
    """Every teacher student's Delta above (nearer 0 than) the random-annotation students' at the same arch and
    tau (PNEU: Delta-F1 <= 0)."""
    part = _beside_random(agg, "delta")
    return None if part.empty else bool((part["delta_mean"] > part["delta_mean_rnd"]).all())


def _teachers_alike(agg: pd.DataFrame, _: dict[str, float]) -> bool | None:
    """At every arch and tau the two teachers' students differ less in F1 than either differs from the random
    annotations' students."""
    part = _beside_random(agg, "metric")
    if part["annotation"].nunique() < 2:
        return None
    by = part.groupby(["arch", "tau"])
    spread = by["metric_mean"].agg(lambda v: v.max() - v.min())
    gap = (part["metric_mean"] - part["metric_mean_rnd"]).abs().groupby([part["arch"], part["tau"]]).min()
    return bool((spread < gap).all())


def _students_beat_teachers(agg: pd.DataFrame, teacher_metric: dict[str, float]) -> bool | None:
    part = _teacher_students(agg)
    part = part[part["annotation"].isin(list(teacher_metric))]
    if part.empty:
        return None
    return bool(all(row.metric_mean > teacher_metric[row.annotation] for row in part.itertuples()))


def _random_spurious(agg: pd.DataFrame, _: dict[str, float]) -> bool | None:
    """The random-annotation students' Delta below the ground-truth-annotation students' for at least 2 of 3
    architectures."""
    rnd = agg[agg["annotation"] == "rnd"].groupby("arch")["delta_mean"].min()
    gt = agg[agg["annotation"] == "GT"].groupby("arch")["delta_mean"].first()
    both = rnd.index.intersection(gt.index)
    if len(both) < 3:
        return None
    return bool((rnd[both] < gt[both]).sum() >= 2)


def _tau_raises_knee_sensitivity(agg: pd.DataFrame, _: dict[str, float]) -> bool | None:
    part = _teacher_students(agg)
    part = part[part["arch"].isin(["vgg16", "densenet121"])].sort_values("tau")
    if part.empty or part["tau"].nunique() < 2:
        return None
    return bool(all(g["delta_mean"].is_monotonic_increasing for _, g in part.groupby(["arch", "annotation"])))


# Fig. 9's stated outcome (spec §1.3) on the per-(arch, annotation, tau) means of one dataset; PNEU is F1
# (Delta <= 0, closer to 0 is better), KNEE MAE (Delta >= 0). Each rule also gets the teachers' clean-test metric.
PNEU_TEACHERS = ("On PNEU, TAP with teacher annotations results in strong performances on the contaminated data with "
                 "little sensitivity to spurious signals.")
FIGURE9_CLAIMS: dict[str, dict[str, RuleClaim]] = {
    "pneu": {
        "teacher-masked TAP: little sensitivity": RuleClaim(
            PNEU_TEACHERS, "every teacher student's mean Delta-F1 above the random-annotation students' (same arch, "
            "tau)", _little_sensitivity),
        "the two teachers' students differ very little": RuleClaim(
            "Notably, there is very little difference between using the two sets of teacher annotations.",
            "per arch and tau the two teachers' students' mean F1 differ less than either from the random "
            "annotations' students'", _teachers_alike),
        "students beat their teachers": RuleClaim(
            "The student models notably outperform both the 10%-teacher (F-score: 0.869) and 1%-teacher "
            "(F-score: 0.668).", "every teacher student's mean F1 on the correlated test above its teacher's "
            "clean-test F1", _students_beat_teachers),
        "random masks: spurious for 2 of 3 architectures": RuleClaim(
            "Random annotations, in contrast, result in performances which rely on spurious correlations for two of "
            "three models.", "the random-annotation students' mean Delta-F1 below the GT students' for at least 2 "
            "of 3 architectures", _random_spurious),
    },
    "knee": {
        "VGG-16, DenseNet-121: a larger tau increases Delta-MAE": RuleClaim(
            "For DenseNet-121 and VGG-16, an increase in τ surprisingly results in an increase in contamination "
            "sensitivity (a similar trend can also be observed on PNEU).",
            "mean Delta-MAE non-decreasing in tau for every teacher student of VGG-16 and DenseNet-121",
            _tau_raises_knee_sensitivity),
    },
}


def teacher_metrics(runs: list[PlannedRun], store: RunStore, dataset: str) -> dict[str, float]:
    """Each done teacher's metric on the clean test set, by its fraction name."""
    metric = xray.SETTINGS[dataset]["metric"]
    return {run.cell["teacher"]: rec.result()["final"]["test_clean"][metric]
            for run, rec in done_records([r for r in runs if r.cell.get("method") == "teacher"
                                          and r.cell["dataset"] == dataset], store)}


TEXT_SPLITS = {"test_clean": "clean test", "test_cor": "correlated test", "test": "permuted test"}  # D-17


def text_table(ctx: Context, runs: list[PlannedRun], store: RunStore) -> Path:
    """The numbers §1.2 takes from the text, ours beside the paper's: each teacher's metric on the clean,
    correlated and permuted test sets (PNEU F1 0.869 / 0.668), and the random masks' precision and recall
    (circa 1.9%)."""
    published = pd.read_csv(PUBLISHED / "tap_text.csv", dtype=str).set_index("quantity")["value"]
    rows = []
    teachers = [r for r in runs if r.cell.get("method") == "teacher"]
    for run, rec in done_records(teachers, store):
        dataset, metric = run.cell["dataset"], xray.SETTINGS[run.cell["dataset"]]["metric"]
        quantity = f"teacher_{run.cell['frac'] * 100:g}pct_{'fscore' if metric == 'f1' else metric}_{dataset}"
        for split, where in TEXT_SPLITS.items():
            rows.append({"quantity": quantity, "where": where, "reproduced": rec.result()["final"][split][metric],
                         "published": published.get(quantity, ""), "unit": metric})
    for dataset in dict.fromkeys(r.cell["dataset"] for r in teachers):
        gt = gt_boxes(ctx, dataset, xray.setting(ctx, dataset, "image_size"))
        for row in mask_overlap(gt, teach.setting(ctx, "taus"), None):
            for value in ("precision", "recall"):
                rows.append({"quantity": f"random_annotation_{value}_{dataset}", "where": f"tau={row['tau']:g}",
                             "reproduced": 100 * row[value],
                             "published": published["random_annotation_recall_precision"], "unit": "%"})
    table = pd.DataFrame(rows, columns=["quantity", "where", "reproduced", "published", "unit"])
    prov = artefact_provenance(ctx, "text", teachers, store, random_seed=RANDOM_SEED,
                               note="teacher F-score test set not stated in the paper (D-17): all three reported")
    return write_table(table, output_path(ctx, "text", "table"), prov)
