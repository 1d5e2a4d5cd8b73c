"""TAP Setting 2, the teacher-student pipeline (spec §2.4, §5, §8 P1/F8/E4): ResNet-18 teachers on 10% / 1%
of the clean train split (Figure 8: their masks' precision and recall against the tag boxes), and TAP students
trained with teacher, random and ground-truth masks (Figure 9, with the teacher F-scores of the text).

Decisions (assumptions where the paper points to its unavailable extended version, D-19):
- One teacher per (dataset, fraction), seed 0, the students' hyper-parameters (§2.4); it is evaluated on the
  full clean, correlated and permuted test sets (D-17), not on the code's `frac` subsets of val and test.
- A done teacher's saliency (§5.2) is computed once, on its students' tagged training images (their rows,
  order and resolution), when a teacher figure is next planned; it lives in the teacher's run folder
  (`saliency-<digest of the students' data settings>.npy`, with the tag boxes of those rows) and the "teacher"
  annotation source thresholds it for each tau. Figure 8 is measured on those rows.
- Teacher-masked students train on the rows the teacher did not see (D-10 `student_set`, paper) or on all
  rows (code). GT and rnd students have no teacher and train on the full split: GT is the Figure 6/7 TAP run.
- Every student uses the TAP lambda chosen by that (dataset, arch)'s GT sweep (§5.4 "same lambda unless
  re-tuned"); the TAP sweep is planned first, and the students once it is done.
- rnd is trained at tau = 0.01 (the paper's focus value); Figure 8 shows random masks at every tau.

Torch-free at import; the saliency step imports torch when it runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from repro.config import Profiles
from repro.errors import DatasetError
from repro.papers import Context, PlannedRun
from repro.papers.tap import xray
SETTINGS: dict[str, Any] = {
    "datasets": ("pneu", "knee"),   # Figs. 8 and 9 (MNIST only in the extended paper)
    "teacher_arch": "resnet18",     # §2.4: ResNet-18 (ImageNet init) teachers for PNEU and KNEE
    "fracs": (0.1, 0.01),           # §2.4: 10% and 1% clean hold-outs
    "teacher_seed": 0,              # §2.4, D-19: one teacher per fraction, shared by the 5 student seeds
    "taus": (0.01, 0.05, 0.10),     # §5.3, D-19: the grid is unknown; default {0.01, 0.05, 0.10}
    "rnd_taus": (0.01,),            # §5.5: rnd at the paper's focus value
    "saliency_batch": 64,           # images per teacher forward/backward (§10: batch-wise)
}
# smoke: tiny preparations, where 1% is 0 rows
PROFILES = Profiles(SETTINGS, quick={"taus": (0.01, 0.10)},
                    smoke={"fracs": (0.5, 0.25), "taus": (0.05,), "rnd_taus": (0.05,)})


TEACHER = "its teacher's saliency"  # what a teacher-masked student waits for (`PlannedRun.after`)


def setting(ctx: Context, name: str) -> Any:
    return PROFILES.get(ctx.profile, name)


def datasets(ctx: Context) -> list[str]:
    """The datasets prepared for training; the first one's preparation message when none is."""
    ready = [d for d in setting(ctx, "datasets") if xray.trainable(ctx, d)]
    if not ready:
        xray.check_prepared(ctx, setting(ctx, "datasets")[0])
    return ready


def fraction_name(frac: float) -> str:
    return f"{frac:.0%}"


def teacher_run(ctx: Context, dataset: str, frac: float) -> PlannedRun:
    """The clean-data ResNet-18 teacher on `frac` of the train rows (§2.4, §5.1)."""
    seed = setting(ctx, "teacher_seed")
    n = xray.split_counts(ctx, dataset)["train"]
    if int(n * frac) < 1:
        raise DatasetError(f"{xray.SETTINGS[dataset]['title']}: a {fraction_name(frac)} teacher of {n} train images "
                         "has no images; prepare the full dataset (or use the smoke profile's larger fractions).")
    run = xray.xray_run(ctx, dataset, setting(ctx, "teacher_arch"), "Base", seed, None,
                        train_rows={"role": "teacher", "frac": frac, "seed": seed})
    cell = {"dataset": dataset, "arch": setting(ctx, "teacher_arch"), "method": "teacher",
            "teacher": fraction_name(frac), "frac": frac, "seed": seed, "lambda": None}
    return replace(run, label=f"{xray.SETTINGS[dataset]['title']} teacher {fraction_name(frac)}", cell=cell)


def teachers(ctx: Context) -> list[PlannedRun]:
    return [teacher_run(ctx, d, f) for d in datasets(ctx) for f in setting(ctx, "fracs")]


def student_rows(ctx: Context, teacher: PlannedRun) -> dict[str, Any]:
    """The train rows of the teacher's students: the rest of the split (D-10 paper) or all of it (code)."""
    return {"role": "student", "frac": teacher.cell["frac"], "seed": teacher.cell["seed"],
            "student_set": ctx.switches["student_set"]}


def student_data(ctx: Context, teacher: PlannedRun) -> dict[str, Any]:
    """The data settings of the teacher's students before their annotation (the same for every arch, seed)."""
    run = xray.xray_run(ctx, teacher.cell["dataset"], teacher.cell["arch"], "TAP", 0, 0.0,
                        train_rows=student_rows(ctx, teacher))
    return run.config.data


def saliency_file(ctx: Context, teacher: PlannedRun) -> str:
    """The teacher's saliency on its students' training rows, relative to the runs dir: one file per teacher
    and student row set (a digest of the students' data settings)."""
    blob = json.dumps(student_data(ctx, teacher), sort_keys=True, separators=(",", ":"))
    return f"{teacher.config.paper}/{teacher.config.key}/saliency-{hashlib.sha256(blob.encode()).hexdigest()[:12]}.npy"


def boxes_file(saliency: Path) -> Path:
    """The tag boxes of the same rows at the same resolution (bit-packed bool), for Figure 8."""
    return saliency.with_name(saliency.stem + "-boxes.npy")


def ensure_saliency(ctx: Context, teacher: PlannedRun) -> bool:
    """Whether the teacher's saliency exists, computing it first if the teacher is done (once; atomic; not in a
    dry-run)."""
    path = ctx.runs_dir / saliency_file(ctx, teacher)
    if path.exists():
        return True
    if ctx.dry_run or not (path.parent / "done").exists():
        return False
    write_saliency(ctx, teacher, path)
    return True


def write_saliency(ctx: Context, teacher: PlannedRun, path: Path) -> None:
    """S = sum_c |d sum_k log_softmax / dx| of the final teacher on its students' tagged training images, in
    their order and resolution, float16 (N, H, W) (§5.2, §10), on ctx.device; with the boxes of those rows."""
    import numpy as np
    import torch

    from repro.data.registry import build_dataset
    from repro.engine import load_weights
    from repro.provenance import device_name
    from repro.runs.prepared import prepared_root, write_npy
    from repro.runs.store import RunStore, atomic_write_json
    from repro.papers.tap.teacher_saliency import input_gradient_saliency
    from repro.seeding import resolve_device

    cfg = teacher.config
    device = resolve_device(ctx.device)
    data = build_dataset(cfg.dataset, student_data(ctx, teacher), cfg.seed, torch.device("cpu"),
                         prepared_root=prepared_root(ctx.runs_dir))
    model = load_weights(RunStore(ctx.runs_dir).record(cfg), "final", device)
    saliency = input_gradient_saliency(model, data.x, data.transform, setting(ctx, "saliency_batch")).numpy()
    boxes = data.mask[:, 0].numpy().astype(bool)
    write_npy(boxes_file(path), np.packbits(boxes, axis=-1))
    write_npy(path, saliency)  # last: its presence means both are complete
    atomic_write_json(path.with_suffix(".json"), {
        "teacher": cfg.key, "shape": list(saliency.shape), "student_data": student_data(ctx, teacher),
        "device": device_name(device), "quantity": "sum_c |d/dx sum_k log_softmax(f(x))_k|, eval mode",
        "boxes": f"{boxes_file(path).name}: np.packbits(bool boxes, axis=-1), width {boxes.shape[-1]}"})


def plan_figure8(ctx: Context) -> list[PlannedRun]:
    """The teachers (P1); each done teacher's saliency is computed here, before the figure needs it."""
    runs = teachers(ctx)
    for run in runs:
        ensure_saliency(ctx, run)
    return runs


def student_run(ctx: Context, dataset: str, arch: str, seed: int, lam: float, masks: str,
                tau: float | None, **data: Any) -> PlannedRun:
    """A TAP student; `masks` names its annotation in the figure (GT, rnd, or the teacher's fraction)."""
    run = xray.xray_run(ctx, dataset, arch, "TAP", seed, lam, **data)
    cell = {**run.cell, "annotation": masks, "tau": tau}
    suffix = "" if tau is None else f" tau={tau:g}"
    return replace(run, label=f"{run.label} {masks}{suffix}", cell=cell)


def students(ctx: Context, dataset: str, arch: str, lam: float, ready: dict[float, PlannedRun]) -> list[PlannedRun]:
    """TAP with GT, rnd and each ready teacher's masks at each tau, x seeds (E4)."""
    seeds = ctx.seeds or xray.setting(ctx, dataset, "seeds")
    size = xray.setting(ctx, dataset, "image_size")
    runs = []
    for seed in range(seeds):
        runs.append(student_run(ctx, dataset, arch, seed, lam, "GT", None))
        for tau in setting(ctx, "rnd_taus"):
            rnd = {"source": "random", "tau": tau} | ({"size": size} if size else {})
            runs.append(student_run(ctx, dataset, arch, seed, lam, "rnd", tau, annotation=rnd))
        for frac, teacher in ready.items():
            waits = not (ctx.runs_dir / saliency_file(ctx, teacher)).exists()  # a dry-run plans them anyway
            for tau in setting(ctx, "taus"):
                mask = {"source": "teacher", "saliency": saliency_file(ctx, teacher), "tau": tau,
                        "tau_mode": ctx.switches["tau_mode"]}
                run = student_run(ctx, dataset, arch, seed, lam, fraction_name(frac), tau,
                                  annotation=mask, train_rows=student_rows(ctx, teacher))
                runs.append(replace(run, after=" and ".join(filter(None, (run.after, TEACHER)))) if waits else run)
    return runs


def plan_figure9(ctx: Context) -> list[PlannedRun]:
    """Teachers and the GT TAP sweep of each (dataset, arch); then, once a lambda is chosen, the students
    (teacher-masked ones once their teacher's saliency exists)."""
    runs = plan_figure8(ctx)
    for dataset in datasets(ctx):
        ready = {r.cell["frac"]: r for r in runs
                 if r.cell["dataset"] == dataset and (ctx.dry_run or (ctx.runs_dir / saliency_file(ctx, r)).exists())}
        for arch in xray.setting(ctx, dataset, "archs"):
            runs += [r for r in xray.plan_xray_sweep(ctx, dataset, (arch,)) if r.cell["method"] == "TAP"]
            lam = xray.chosen_xray_lambdas(ctx, dataset, arch)["TAP"]
            if lam is not None:
                runs += students(ctx, dataset, arch, lam, ready)
    return runs
