"""TAP on the medical X-ray sets (spec §2.2-2.3, §3.2, §6, §8 E2/E3/T1): PNEU (Figure 6) and KNEE (Figure 7)
with VGG-16, ResNet-18 and DenseNet-121; Base, No XS, RRR, RBR and TAP with ground-truth masks, each
penalty's lambda chosen per (dataset, arch) by a seed-0 sweep on the permuted-val CE (weighted for PNEU).

Torch-free at import; the preparation, the loader (`repro.papers.tap.data_tagged_xray`) and the reports import it.
"""

from __future__ import annotations

from functools import cache
from itertools import product
from pathlib import Path
from typing import Any

from repro.config import Profiles, RunConfig
from repro.papers import Context, PlannedRun
from repro.papers.tap import mnist as paper
from repro.papers.tap.data_layout import META
from repro.runs.prepared import is_prepared, prepared_dir, recorded

ARCHS = ("vgg16", "resnet18", "densenet121")  # §3.2
SIZE = 224  # px, as prepared (`repro.papers.tap.data_prepare_tagged.SIZE`)
COMMON = {
    "archs": ARCHS,
    "lr": 1e-5,                                      # §6 table (ImageNet models)
    "batch_size": 16,                                # §6 table; Table 1 setup
    "rbr_batch": {"densenet121": 8},                 # §1.1/§6: DenseNet-121 + RBR is OOM at 16 on 10 GB
    "epochs": 50,                                    # §6 table; the final-epoch model is evaluated (§1.2)
    "seeds": 5,                                      # §1.2: seeds 0-4
    "grid": paper.MNIST["grid"],                     # §6 lambda grids: TAP, RRR 1e-9..1; RBR 1..1e9
    "sweep_seeds": 1,                                # §6: tuning seeds unknown, assume seed 0
    "image_size": None,                              # §2.2-2.3: 224 px as prepared, no resize
}
SETTINGS: dict[str, dict[str, Any]] = {
    "pneu": {**COMMON,
             "title": "PNEU",
             "num_classes": 2,                       # §3.2 K = 2 (normal, pneumonia)
             "ce_weight": [0.7421, 0.2579],          # §2.2, D-13 code: weighted CE in training, val loss, RBR
             "metrics": ("f1", "f1_code", "accuracy", "ce"),  # §7: F1 (pneumonia positive); D-15/D-16 variant
             "metric": "f1"},
    "knee": {**COMMON,
             "title": "KNEE",
             "num_classes": 5,                       # §3.2 K = 5 (KL grades 0-4, D-18)
             "ce_weight": None,                      # §2.3: unweighted CE
             "metrics": ("mae", "mae_code", "accuracy", "ce"),  # §7: MAE of the grade; D-15 variant
             "metric": "mae"},
}
# The paper values are each dataset's (`SETTINGS`); a profile overrides them for both datasets.
PROFILES = Profiles(
    {},
    quick={"epochs": 2, "seeds": 2, "train_limit": 64, "eval_limit": 64, "image_size": 64,
           "grid": {"rrr": [1e-2], "tap": [1e-3], "rbr": [1e3]}},
    smoke={"archs": ("resnet18",), "epochs": 1, "seeds": 1, "train_limit": 8, "eval_limit": 8,
           "image_size": 32, "grid": {"rrr": [1e-2], "tap": [1e-3], "rbr": [1e3]}},
)


def setting(ctx: Context, dataset: str, name: str) -> Any:
    """A setting of `dataset` under the context's profile."""
    return PROFILES.get(ctx.profile, name, SETTINGS[dataset].get(name))


def prepared_folder(ctx: Context, dataset: str) -> Path:
    return prepared_dir(ctx.runs_dir, f"tap/{dataset}")


SPLITS = ("train", "val", "test")


def raw_folder(ctx: Context, dataset: str) -> Path | None:
    """The dataset's raw folder under the data root (the first of its known names), or None."""
    from repro.papers.tap.data_prepare import SOURCES

    if ctx.data_root is None:
        return None
    return next((ctx.data_root / f for f in SOURCES[dataset][0] if (ctx.data_root / f).is_dir()), None)


def split_counts(ctx: Context, dataset: str) -> dict[str, int] | None:
    """Images per split: as prepared (meta.json), or in a dry-run before preparation as preparing the raw data
    would write them (a layout check and a file listing); None where neither is there."""
    meta = recorded(prepared_folder(ctx, dataset), META)
    if meta:
        return meta["counts"]
    raw = raw_folder(ctx, dataset) if ctx.dry_run else None
    return None if raw is None else raw_split_sizes(dataset, raw)


@cache
def raw_split_sizes(dataset: str, raw: Path) -> dict[str, int]:
    """`repro.papers.tap.data_prepare_tagged.split_sizes` of a raw folder, listed once per process (a dry-run plans
    every run from it)."""
    from repro.data.image_sets import DatasetError
    from repro.papers.tap.data_prepare_tagged import split_sizes

    try:
        return split_sizes(dataset, raw)
    except DatasetError as e:
        raise DatasetError(f"{SETTINGS[dataset]['title']}: {e}") from e


def absent_splits(ctx: Context, dataset: str) -> list[str] | None:
    """The train, val and test splits that `dataset` lacks, as prepared (meta.json) or in a dry-run as preparing
    the raw data would make it; None where neither is there."""
    meta = recorded(prepared_folder(ctx, dataset), META)
    if meta:
        return meta.get("absent_splits", [])
    counts = split_counts(ctx, dataset)
    return None if counts is None else [s for s in SPLITS if s not in counts]


def trainable(ctx: Context, dataset: str) -> bool:
    """Whether `dataset` is prepared (a dry-run: or preparable) with the train, val and test splits its runs need."""
    return absent_splits(ctx, dataset) == []


def check_prepared(ctx: Context, dataset: str) -> Path:
    """The prepared folder of `dataset`, whose train, val and test splits are there (a dry-run: or will be)."""
    folder = prepared_folder(ctx, dataset)
    absent = absent_splits(ctx, dataset)
    if absent is None:
        raise FileNotFoundError(
            f"{SETTINGS[dataset]['title']} is not prepared (no {folder / 'meta.json'}): run `repro data prepare "
            f"tap --data-root DIR --runs-dir {ctx.runs_dir}` (or pass --data-root to this command), where DIR "
            f"holds chest_xray/{{train,test}}/{{NORMAL,PNEUMONIA}} (PNEU) and kneeKL224/{{train,val,test}}/0..4 (KNEE).")
    if absent:
        source = f"was prepared from raw data ({folder})" if is_prepared(folder, META) else \
            f"has raw data ({raw_folder(ctx, dataset)})"
        raise FileNotFoundError(
            f"{SETTINGS[dataset]['title']} {source} without the {', '.join(absent)} split(s), so it cannot be "
            f"trained and evaluated: place the full dataset under the data root and prepare it again into a fresh "
            f"--runs-dir with `repro data prepare tap --data-root DIR`.")
    return folder


def train_size(ctx: Context, dataset: str, train_rows: dict[str, Any] | None = None) -> int | None:
    """Training images per epoch of a run: the train split, its teacher or student rows (`train_rows`, as
    `repro.papers.tap.data_prepare.teacher_split` draws them), at most the profile's train_limit."""
    counts = split_counts(ctx, dataset)
    if counts is None:
        return None
    n = counts["train"]
    if train_rows:
        teacher = int(n * train_rows["frac"])
        n = teacher if train_rows["role"] == "teacher" else n if train_rows.get("student_set") == "full" else n - teacher
    limit = setting(ctx, dataset, "train_limit")
    return min(n, limit) if limit else n


def prepare_xray(ctx: Context) -> None:
    """Prepare PNEU and KNEE from ctx.data_root into <runs>/prepared/tap/{pneu,knee} unless already done; a
    dataset absent under the data root is skipped with a note, a bad layout raises with the layout message."""
    from repro.data.image_sets import DatasetError
    from repro.papers.tap.data_prepare import SOURCES

    todo = [d for d in SETTINGS if not is_prepared(prepared_folder(ctx, d), META)]
    if not todo:
        return
    if ctx.data_root is None:
        raise FileNotFoundError(
            f"{', '.join(SETTINGS[d]['title'] for d in todo)} not prepared and no data root is given: pass "
            f"--data-root DIR (or set REPRO_DATA) where DIR holds chest_xray/ (PNEU) and/or kneeKL224/ (KNEE); "
            f"`repro data check` shows what is found.")
    for dataset in todo:
        folders, prepare = SOURCES[dataset]
        found = next((ctx.data_root / f for f in folders if (ctx.data_root / f).is_dir()), None)
        if found is None:
            print(f"note: {SETTINGS[dataset]['title']} skipped: none of {', '.join(folders)} under {ctx.data_root}")
            continue
        if ctx.dry_run:  # check the layout, write nothing
            split_counts(ctx, dataset)
            continue
        try:
            prepare(found, prepared_folder(ctx, dataset), seed=paper.DATA_SEED)
        except DatasetError as e:
            raise DatasetError(f"{SETTINGS[dataset]['title']}: {e}") from e


def batch_size(dataset: str, arch: str, method: str) -> int:
    """16, or the smaller batch of an architecture whose RBR run does not fit (DenseNet-121: 8)."""
    common = SETTINGS[dataset]
    return common["rbr_batch"].get(arch, common["batch_size"]) if method == "RBR" else common["batch_size"]


def xray_run(ctx: Context, dataset: str, arch: str, method: str, seed: int, lam: float | None,
             **data: Any) -> PlannedRun:
    """One PNEU/KNEE run: `method` in Base (clean data), No XS, RRR, RBR, TAP; `lam` the penalty weight.
    `data` adds loader settings (e.g. `annotation={"source": ...}`, `train_rows={...}`) to the run's data."""
    ce_weight = SETTINGS[dataset]["ce_weight"] if ctx.switches["pneu_ce"] == "weighted" else None
    objective = paper.penalty_objective(method, lam, ctx.switches, class_weight=ce_weight)
    folder = check_prepared(ctx, dataset)
    settings = {"prepared": f"tap/{dataset}", "fingerprint": paper.fingerprint(ctx, folder),
                "variant": "clean" if method == "Base" else "contaminated"}
    for name in ("train_limit", "eval_limit", "image_size"):
        if setting(ctx, dataset, name):
            settings[name] = setting(ctx, dataset, name)
    batch = batch_size(dataset, arch, method)
    method_args: dict[str, Any] = {"objective": objective, "metric_args": {"ce": {"batch": batch}}}
    if ce_weight:
        method_args["ce_weight"] = ce_weight
    config = RunConfig(
        paper="tap", dataset=dataset, model=arch, method=method, seed=seed, epochs=setting(ctx, dataset, "epochs"),
        batch_size=batch, lr=SETTINGS[dataset]["lr"], data={**settings, **data},
        model_args={"num_classes": SETTINGS[dataset]["num_classes"], "init": ctx.init,
                    **paper.arch_args(arch, ctx.switches)},
        method_args=method_args, optimizer=paper.sgd(ctx.switches), metrics=SETTINGS[dataset]["metrics"],
        selection="final", semantics=paper.SEMANTICS)
    label = f"{SETTINGS[dataset]['title']} {arch} {method}{paper.lambda_label(lam)} s{seed}"
    cell = {"dataset": dataset, "arch": arch, "method": method, "seed": seed, "lambda": lam}
    return PlannedRun(label, cell, config, n_train=train_size(ctx, dataset, data.get("train_rows")),
                      image_size=setting(ctx, dataset, "image_size") or SIZE,
                      after=paper.SWEEP if isinstance(lam, paper.PendingLambda) else "")


def plan_xray_sweep(ctx: Context, dataset: str, archs: tuple[str, ...] | None = None) -> list[PlannedRun]:
    """Seed-0 runs of RRR, RBR and TAP over the lambda grid for every architecture (§6, T1)."""
    grid = setting(ctx, dataset, "grid")
    return [xray_run(ctx, dataset, arch, m, s, lam) for arch in archs or setting(ctx, dataset, "archs")
            for m in paper.PENALTY for lam in grid[paper.PENALTY[m]] for s in range(SETTINGS[dataset]["sweep_seeds"])]


def chosen_xray_lambdas(ctx: Context, dataset: str, arch: str) -> dict[str, float | None]:
    """Per method, the lambda with the lowest final-epoch permuted-val CE (weighted for PNEU); None until
    its sweep is done."""
    return paper.pick_lambdas(ctx, plan_xray_sweep(ctx, dataset, (arch,)))


def plan_figure(ctx: Context, dataset: str) -> list[PlannedRun]:
    """The sweep, then per architecture Base, No XS and every penalty with its chosen lambda, x seeds."""
    seeds = ctx.seeds or setting(ctx, dataset, "seeds")
    runs = plan_xray_sweep(ctx, dataset)
    for arch in setting(ctx, dataset, "archs"):
        lams = chosen_xray_lambdas(ctx, dataset, arch)
        for method, seed in product(paper.METHODS, range(seeds)):
            if method not in paper.PENALTY:
                runs.append(xray_run(ctx, dataset, arch, method, seed, None))
            elif lams[method] is not None:
                runs.append(xray_run(ctx, dataset, arch, method, seed, lams[method]))
    return runs


def plan_figure6(ctx: Context) -> list[PlannedRun]:
    """Figure 6 (PNEU, E2): see `plan_figure`."""
    return plan_figure(ctx, "pneu")


def plan_figure7(ctx: Context) -> list[PlannedRun]:
    """Figure 7 (KNEE, E3): see `plan_figure`."""
    return plan_figure(ctx, "knee")
