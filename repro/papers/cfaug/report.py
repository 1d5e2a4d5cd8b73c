"""cfaug artefacts: the accuracy / AUC Tables 1, 4 and 6 (reproduced mean, std and n over seeds beside the paper's
numbers, test metrics at each run's first best-validation epoch, §6.5) and Table 8 (our recipe beside appendix A.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from repro.papers import Context, PlannedRun, Tolerance
from repro.report.artefacts import artefact_provenance, done_records, output_path, per_run_frame
from repro.report.claims import Claim, Compare, evaluate_claims, report_claims, seeds_by, shortfall
from repro.report.tables import aggregate, compare, print_table, read_published, write_table
from repro.runs.store import RunStore

CF, F, SAL, ALL3 = "CF(CAGAN)", "F(Shuffle)", "Sal", "CF(CAGAN)+F(Shuffle)+Sal"
# Table 3 (§1.3): the text's claims on the next-class shift (lower = less background reliance), across seeds.
LEAST = ("F(Shuffle), although being the most accurate model, is not the least reliant on backgrounds. Instead "
         "CF(CAGAN) is the best from this perspective.")
BOTH = ("Both CF and F augmentations outperform Sal, and the combination of the three further decreases the reliance "
        "on backgrounds.")
SHIFT_CLAIMS: dict[str, Claim] = {
    "CF(CAGAN) shifts less than F(Shuffle)": Claim(LEAST, (Compare((CF, "shift"), "<", (F, "shift")),)),
    "CF and F both shift less than Sal": Claim(BOTH, tuple(Compare((m, "shift"), "<", (SAL, "shift")) for m in (CF, F))),
    "combining all three shifts less still": Claim(BOTH, tuple(Compare((ALL3, "shift"), "<", (m, "shift"))
                                                               for m in (CF, F, SAL))),
}
SYNTHETIC_CLAIM = ("synthetic data: its square foreground and label-coloured background cannot show the paper's "
                   "claim either way")
TOLERANCE = Tolerance(abs=2.0)  # accuracy / AUC points, plus 2 published std
KEYS = ["method", "hparam"]
# Per table: our evaluation set -> the published column prefix, and the set whose gain `improv_pct` measures.
COLUMNS = {"table1": ({"original": "original", "mixed_same": "mixed_same", "mixed_rand": "mixed_rand",
                       "mixed_next": "mixed_next"}, None),
           "table4": ({"original": "orig", "flip": "flip"}, "flip"),
           "table6": ({"cis_test": "cis_test", "trans_test": "trans_test"}, "trans_test")}


def run_inits(runs: list[PlannedRun], store: RunStore) -> str:
    """The model init(s) of an artefact's runs ("random" or "bit_s", C-1 per dataset), comma-joined: those of the
    done runs, or of the planned ones while none is done; "none" without runs."""
    from repro.papers.cfaug.plans import model_init
    done = [r for r, _ in done_records(runs, store)] or runs
    return ", ".join(sorted({model_init(r.config.model, r.config.model_args["init"]) for r in done})) or "none"


def cfaug_provenance(ctx: Context, artefact: str, runs: list[PlannedRun], store: RunStore, init: str | None = None,
                     **extra: Any) -> dict[str, Any]:
    """`artefact_provenance` whose `init` is the one the cfaug models started from (`init`, else `run_inits`),
    not the CLI's --init, which cfaug does not read."""
    return {**artefact_provenance(ctx, artefact, runs, store, **extra), "init": init or run_inits(runs, store)}


def claim_note(ctx: Context, result: str, synthetic: bool) -> str:
    """Why a tested claim of the paper cannot be read off these runs, or (`shortfall`) what its verdict means at
    this profile."""
    if synthetic:
        return SYNTHETIC_CLAIM
    return shortfall(ctx, result, f"{ctx.profile} profile (reduced model, data and seeds): indicative only")


def _note(ctx: Context, synthetic: bool) -> str:
    notes = [] if ctx.profile == "paper" else [
        f"{ctx.profile} profile: reduced model, images, epochs and seeds; not comparable with the paper"]
    if synthetic:
        notes.append("trained on synthetic data in the official layout, not the real dataset")
    return "; ".join(notes)


def _write(ctx: Context, name: str, table: pd.DataFrame, runs: list[PlannedRun], store: RunStore,
           show: tuple[str, list[str], list[str]] | None, **extra: Any) -> tuple[Path, dict[str, Any]]:
    """Write the table with its provenance (profile, seeds, runs, whether the data was synthetic) and print it:
    `show` = (title, key columns, value columns) for `print_table`, None for a plain listing. Returns the path
    and the provenance."""
    synthetic = any(rec.result().get("synthetic_data") for _, rec in done_records(runs, store))
    note = _note(ctx, synthetic)
    prov = cfaug_provenance(ctx, name, runs, store, std_ddof=ctx.switches["std_ddof"], note=note,
                            synthetic_data=synthetic, **extra)
    path = write_table(table, output_path(ctx, name, "table"), prov)
    if show:
        print_table(table, *show)
    else:
        print(table.to_string(index=False, float_format="%.2f"))
    if note:
        from rich.console import Console

        Console().print(f"[yellow]{note}[/yellow]")
    return path, prov


def _improvement(table: pd.DataFrame, split: str, published: pd.DataFrame) -> pd.DataFrame:
    """§1.4: improv_pct = 100 (method - Orig) / Orig on `split`'s seed means, beside the published column."""
    orig = table.loc[table["method"] == "Orig", f"{split}_mean"]
    base = orig.iloc[0] if len(orig) else float("nan")
    table["improv_pct"] = 100 * (table[f"{split}_mean"] - base) / base
    table["improv_pct_published"] = published["improv_pct"].values
    return table


def accuracy_table(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Table 1 (IN-9 accuracy), 4 (Waterbirds accuracy) or 6 (CCT macro AUC): one row per published config."""
    from repro.papers.cfaug.plans import TABLE_DATASET
    name = next(n for n, d in TABLE_DATASET.items() if d == runs[0].cell["dataset"])
    sets, gain = COLUMNS[name]
    done = done_records(runs, store)
    metric = done[0][1].result()["metric"] if done else "accuracy"
    frame = per_run_frame(runs, store, lambda res: {s: res["best"][s][res["metric"]] for s in sets})
    values = list(sets)
    agg = aggregate(frame, KEYS, values, ctx.switches["std_ddof"])
    published = read_published("cfaug", name)
    table = compare(agg, published, KEYS, {s: (f"{p}_mean", f"{p}_std", TOLERANCE) for s, p in sets.items()})
    if gain:
        table = _improvement(table, gain, published)
    table.insert(2, "metric", metric)
    table["paper_flag"] = published["flag"].values
    details = {rec.key: rec.result().get("details", {}) for _, rec in done[:1]}
    return [_write(ctx, name, table, runs, store, (f"cfaug {name} ({metric}, %)", KEYS, values),
                   selection=f"val/{metric}, first maximum (§6.5)", dataset_details=details)[0]]


def _ours(dataset: str) -> dict[str, str]:
    """Our recipe for one dataset (repro.papers.cfaug.RECIPES) in Table 8's wording."""
    from repro.papers.cfaug.plans import RECIPES
    r = RECIPES[dataset]
    opt, s = r["optimizer"], r["schedule"]
    schedule = (f"x{s['gamma']} after epochs {'/'.join(map(str, s['milestones']))}" if s["kind"] == "multistep"
                else f"ReduceLROnPlateau patience {s['patience']} (val CE, factor {s['factor']})")
    return {"model": "BiT-S-R50x1", "epochs": str(r["epochs"]), "lr": f"{r['lr']:g}",
            "optimizer": f"{'SGD' if opt['name'] == 'sgd' else 'RMSProp'} momentum {opt['momentum']}",
            "weight_decay": f"{opt['weight_decay']:g}", "lr_schedule": schedule, "batch_size": str(r["batch_size"]),
            "early_stopping": "yes (first best-val epoch of a full run, C-8)", "finetuning": ""}


def hyperparameter_table(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Table 8: per parameter, the paper's value and ours for each dataset (init under the C-1 switch)."""
    from repro.papers.cfaug.plans import init_for, model_init, profile_setting
    published = read_published("cfaug", "table8")
    datasets = {"in9": "in9", "wb": "waterbirds", "cct": "cct"}
    ours = {col: _ours(d) for col, d in datasets.items()}
    for col, d in datasets.items():
        ours[col]["finetuning"] = {"bit_s": "yes (BiT-S)", "random": "no"}[init_for(ctx, d)]
    rows: list[dict[str, Any]] = []
    for _, p in published.iterrows():
        row: dict[str, Any] = {"parameter": p["parameter"]}
        for col in datasets:
            row[f"{col}_paper"], row[f"{col}_ours"] = p[col], ours[col][p["parameter"]]
        rows.append(row)
    table = pd.DataFrame(rows)
    model = profile_setting(ctx, "model", "bit_r50x1")
    inits = ", ".join(f"{d}: {model_init(model, init_for(ctx, d))}" for d in datasets.values())
    return [_write(ctx, "table8", table, runs, store, None, init=inits,
                   recipe="no training runs: the settings repro uses")[0]]


def run_device(ctx: Context) -> Any:
    """The device post-hoc evaluations run on (the CLI's --device; CUDA when present under auto)."""
    import torch

    return torch.device("cuda" if ctx.device in ("auto", "cuda") and torch.cuda.is_available() else
                        ctx.device if ctx.device not in ("auto", "cuda") else "cpu")


def saliency_table(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Table 2 (IN-9), 5 (Waterbirds) or 7 (CCT): per config, the saliency AUPR of its best checkpoints (§7.3,
    evaluated here once per run and cached) and its accuracy / AUC, on the table's two sets."""
    from repro.papers.cfaug.posthoc import saliency_of_run
    from repro.papers.cfaug.plans import SALIENCY_TABLES, saliency_settings
    dataset = runs[0].cell["dataset"] if runs else "in9"
    name, (_, sets) = next((n, v) for n, v in SALIENCY_TABLES.items() if v[0] == dataset)
    settings, device = saliency_settings(ctx), run_device(ctx)
    rows = []
    for r, rec in done_records(runs, store):
        res = rec.result()
        aupr = saliency_of_run(rec, sets, settings, device)
        rows.append({**r.cell, "metric": "sal_aupr", **aupr})
        rows.append({**r.cell, "metric": "auc" if res["metric"] == "auc" else "acc",
                     **{s: res["best"][s][res["metric"]] for s in sets}})
    frame = pd.DataFrame(rows)
    keys, values = KEYS + ["metric"], list(sets)
    agg = aggregate(frame, keys, values, ctx.switches["std_ddof"])
    published = read_published("cfaug", name)
    prefix = {"original": "orig" if dataset == "waterbirds" else "original"}
    table = compare(agg, published, keys, {s: (f"{prefix.get(s, s)}_mean", f"{prefix.get(s, s)}_std", TOLERANCE)
                                           for s in sets})
    table["paper_flag"] = published["flag"].values
    return [_write(ctx, name, table, runs, store, (f"cfaug {name} (saliency AUPR and accuracy/AUC, %)", keys, values),
                   saliency=settings, attribution="captum DeepLiftShap, target = label, per-pixel sum of squared "
                   "attributions, per-image average precision against the fg mask (§7.3)")[0]]


def shift_table(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Table 3 (§1.3, §7.4): 100 x (mean p(next class) on Mixed-Next - on Original) from each run's selected-epoch
    logits; the paper's body is lost, so the text's three claims are checked instead of numbers."""
    import torch

    from repro.papers.cfaug.metrics import next_class_shift

    rows = []
    for r, rec in done_records(runs, store):
        p = torch.load(rec.path("predictions.pt"), weights_only=True)
        rows.append({**r.cell, "shift": next_class_shift(p["mixed_next"]["logits"], p["mixed_next"]["labels"],
                                                         p["original"]["logits"], p["original"]["labels"])})
    frame = pd.DataFrame(rows)
    table = aggregate(frame, KEYS, ["shift"], ctx.switches["std_ddof"])
    checked = evaluate_claims(SHIFT_CLAIMS, seeds_by(frame, ["method"], ["shift"]))
    path, prov = _write(ctx, "table3", table, runs, store, None,
                        published="none: the table body is missing from the paper's text")
    return [path, report_claims(ctx, "table3", checked, prov,
                                {label: claim_note(ctx, ev.result, prov["synthetic_data"])
                                 for label, (_, ev) in checked.items()})]
