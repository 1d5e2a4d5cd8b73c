"""Zhang et al., "Targeted Activation Penalties Help CNNs Ignore Spurious Signals" (AAAI 2024;
specs/tap.md, papers/tap.txt).

This module holds the switches, decoy MNIST (Figure 5), the lambda sweeps (`lambdas`, lowest final-epoch
permuted-val cross-entropy) and the artefact registry; PNEU and KNEE (Figures 6, 7) are planned in `tap_xray`,
the teacher-student pipeline (Figures 8, 9) in `tap_teachers`, Figure 1 in `tap_figure1`. Table 1 (a benchmark)
and Figure 4 (example images) train nothing.
"""

from __future__ import annotations

import importlib
import json
from functools import partial
from itertools import product
from pathlib import Path
from typing import Any

from repro.config import RunConfig, Switch
from repro.papers import Artefact, Context, Paper, PlannedRun, lazy, report_builder

report = partial(report_builder, "tap_report")  # build functions live in repro/report/

SEMANTICS = "tap-1"

SWITCHES = (
    Switch("D-1", "tap_norm", "squared", "l1", "squared", "TAP: squared Frobenius norm (code) or L1 (paper Eq. 8)"),
    Switch("D-2", "tap_downscale", "chained", "direct", "chained",
           "TAP mask: chained maxpool+avgpool per layer (code) or from the input mask for every layer (paper Eq. 7)"),
    Switch("D-3", "sgd_reading", "momentum", "weight_decay", "momentum",
           "SGD: the paper's 'weight decay of 0.9' is momentum 0.9 without weight decay (code) or weight decay 0.9 "
           "without momentum (as written)"),
    Switch("D-4", "tau_mode", "percentile", "absolute", "percentile",
           "Teacher masks: the lowest tau-fraction of saliency per image (code) or |E| normalised to [0,1] < tau (paper Eq. 14)"),
    Switch("D-5", "rrr_output", "log_softmax", "logits", "log_softmax",
           "RRR: gradient of the summed log-softmax, channel-summed, mask rescaled by HW/|M| inside the square "
           "(code) or of the summed logits with the plain mask (paper Eq. 4)"),
    Switch("D-6", "vgg_layers", 4, 5, 5,
           "VGG-16 targeted layers: after each of the 5 MaxPools (paper; the code's vgg16_activations) or pools "
           "2-5 (the code's vgg16_4_activations, the only one its overlap script supports)"),
    Switch("D-7", "densenet_targets", "transitions", "dense_blocks", "transitions",
           "DenseNet-121 targeted layers: transition1-3 outputs and ReLU(norm5) (code) or the 4 dense blocks' "
           "outputs (paper text)"),
    Switch("D-9", "rbr_influence", "code", "full", "code",
           "RBR influence function: the code's call order (first-conv path only) or the full input derivative"),
    Switch("D-10", "student_set", "full", "remainder", "remainder",
           "Teacher-student: the student trains on the train rows its teacher did not see (paper) or on all (code)"),
    Switch("D-13", "pneu_ce", "weighted", "plain", "weighted",
           "PNEU loss: class-weighted CE [0.7421, 0.2579] in training, val loss and RBR (code) or plain CE (paper)"),
)

SGD_READINGS = {"momentum": {"name": "sgd", "momentum": 0.9}, "weight_decay": {"name": "sgd", "weight_decay": 0.9}}

# Decoy MNIST, two-layer CNN (spec §6); each value with its source.
MNIST = {
    "model": "tap_cnn",                     # §3.1 Net_one, random init
    "lr": 1e-3,                             # §6 table
    "optimizer": SGD_READINGS["momentum"],  # §6, D-3 code reading (runs take the switch's: `sgd`)
    "batch_size": 256,                      # §6 table
    "n_train": 54_000,                      # §2.1: the 60k training images less the 10% val split
    "epochs": 50,                           # §6 table; the final-epoch model is evaluated
    "seeds": 5,                             # §1.2: seeds 0-4
    "grid": {"rrr": [10.0 ** e for e in range(-9, 1)], "tap": [10.0 ** e for e in range(-9, 1)],
             "rbr": [10.0 ** e for e in range(0, 10)]},  # §6 lambda tuning grids
    "sweep_seeds": 1,                       # §6: tuning seeds unknown, assume seed 0
}

PROFILES: dict[str, dict[str, Any]] = {
    "paper": {},
    # quick: one seed, one lambda per method, and batch 64 instead of 256 so that 3 epochs of the 4,500-digit
    # subset give 213 SGD steps (the paper: 10.5k steps over 54k digits); the output says whether No XS
    # collapses at this budget.
    "quick": {"epochs": 3, "seeds": 1, "batch_size": 64, "eval_limit": 2000,
              "grid": {"rrr": [1e-2], "tap": [1e-3], "rbr": [1e3]}},
    "smoke": {"epochs": 1, "seeds": 1, "train_limit": 256, "eval_limit": 500,
              "grid": {"rrr": [1e-2], "tap": [1e-3], "rbr": [1e3]}},
}

METHODS = ("Base", "No XS", "RRR", "RBR", "TAP")
PENALTY = {"RRR": "rrr", "RBR": "rbr", "TAP": "tap"}
PREPARED = "tap/decoy_mnist"
DATA_SEED = 0  # D-21: the code leaves some data draws unseeded; repro seeds them all with 0


def setting(ctx: Context, name: str) -> Any:
    return PROFILES[ctx.profile].get(name, MNIST.get(name))


def fingerprint(folder: Path) -> str:
    """The prepared data's fingerprint, hashed once at preparation (meta.json), so runs are tied to the
    exact data they saw."""
    return json.loads((folder / "meta.json").read_text())["fingerprint"][:16]


def prepare(ctx: Context) -> None:
    """Build decoy MNIST from the user's MNIST files under --data-root unless it is already prepared."""
    out = ctx.runs_dir / "prepared" / PREPARED
    if (out / "meta.json").exists():  # written last: the preparation is complete
        return
    if ctx.data_root is None:
        raise FileNotFoundError(
            "decoy MNIST is not prepared and no data root is given: pass --data-root DIR (or set REPRO_DATA) "
            "where DIR/MNIST holds the MNIST IDX files (train-images-idx3-ubyte.gz etc., or the 5k subset "
            "MNIST/subset/train-5k-*); `repro data check` shows what is found.")
    from repro.data.tap_prepare import prepare_decoy_mnist

    prepare_decoy_mnist(ctx.data_root / "MNIST", out, seed=DATA_SEED)


def sgd(switches: dict[str, Any]) -> dict[str, Any]:
    """The optimizer spec of every TAP run under the D-3 switch (the lr is the dataset's)."""
    return SGD_READINGS[switches["sgd_reading"]]


def arch_args(arch: str, switches: dict[str, Any]) -> dict[str, Any]:
    """Model arguments that the D-6 (VGG-16) and D-7 (DenseNet-121) switches set."""
    return {"vgg16": {"layers": switches["vgg_layers"]},
            "densenet121": {"targets": switches["densenet_targets"]}}.get(arch, {})


def penalty_objective(method: str, lam: float | None, switches: dict[str, Any],
                      **rbr_args: Any) -> dict[str, dict[str, Any]]:
    """The objective spec of `method`: {} for Base and No XS, else its penalty at weight `lam` with the D-1,
    D-2 (TAP), D-5 (RRR) and D-9 (RBR) switches; `rbr_args` (e.g. PNEU's class_weight) go to RBR."""
    if method not in PENALTY:
        return {}
    args = {"tap": {"norm": switches["tap_norm"], "downscale": switches["tap_downscale"]},
            "rbr": {"influence": switches["rbr_influence"], **rbr_args},
            "rrr": {"output": switches["rrr_output"]}}[PENALTY[method]]
    return {PENALTY[method]: {"weight": lam, **args}}


def mnist_run(ctx: Context, method: str, seed: int, lam: float | None) -> PlannedRun:
    folder = ctx.runs_dir / "prepared" / PREPARED
    objective = penalty_objective(method, lam, ctx.switches)
    data = {"prepared": PREPARED, "fingerprint": fingerprint(folder),
            "variant": "clean" if method == "Base" else "contaminated"}
    for limit in ("train_limit", "eval_limit"):
        if setting(ctx, limit):
            data[limit] = setting(ctx, limit)
    config = RunConfig(
        paper="tap", dataset="decoy_mnist", model=MNIST["model"], method=method, seed=seed,
        epochs=setting(ctx, "epochs"), batch_size=setting(ctx, "batch_size"), lr=MNIST["lr"], data=data,
        method_args={"objective": objective}, optimizer=sgd(ctx.switches), metrics=("accuracy", "ce"),
        selection="final", semantics=SEMANTICS)
    label = f"MNIST {method}" + (f" lambda={lam:g}" if lam is not None else "") + f" s{seed}"
    return PlannedRun(label, {"dataset": "mnist", "method": method, "seed": seed, "lambda": lam}, config)


def mnist_sweep(ctx: Context) -> list[PlannedRun]:
    """Seed-0 decoy MNIST runs of RRR, RBR and TAP over the lambda grid (§6)."""
    grid = setting(ctx, "grid")
    return [mnist_run(ctx, m, s, lam) for m in PENALTY for lam in grid[PENALTY[m]]
            for s in range(MNIST["sweep_seeds"])]


def plan_sweep(ctx: Context) -> list[PlannedRun]:
    """Every lambda sweep (T1): decoy MNIST, then PNEU and KNEE where they are prepared for training."""
    xray = importlib.import_module(XRAY)
    return mnist_sweep(ctx) + [run for dataset in xray.SETTINGS if xray.trainable(ctx, dataset)
                               for run in xray.plan_xray_sweep(ctx, dataset)]


def pick_lambdas(ctx: Context, sweep: list[PlannedRun]) -> dict[str, float | None]:
    """Per penalty method, the lambda of `sweep` with the lowest final-epoch permuted-val CE; None until all
    of that method's sweep runs are done."""
    from repro.runs.store import RunStore

    store = RunStore(ctx.runs_dir)
    best: dict[str, tuple[float, float] | None] = {m: None for m in PENALTY}
    done = {m: True for m in PENALTY}
    for run in sweep:
        rec = store.record(run.config)
        method = run.cell["method"]
        if not rec.path("done").exists():
            done[method] = False
            continue
        loss = rec.result()["final"]["valid"]["ce"]
        if best[method] is None or loss < best[method][0]:
            best[method] = (loss, run.cell["lambda"])
    return {m: best[m][1] if done[m] and best[m] else None for m in PENALTY}


def chosen_lambdas(ctx: Context) -> dict[str, float | None]:
    """Decoy MNIST: per method, the lambda with the lowest final-epoch permuted-val CE (`pick_lambdas`)."""
    return pick_lambdas(ctx, mnist_sweep(ctx))


def all_chosen_lambdas(ctx: Context) -> dict[tuple[str, str], dict[str, float | None]]:
    """The chosen lambdas of every sweep in `plan_sweep`, by (dataset, arch)."""
    xray = importlib.import_module(XRAY)
    chosen = {("mnist", MNIST["model"]): chosen_lambdas(ctx)}
    for dataset in xray.SETTINGS:
        if xray.trainable(ctx, dataset):
            for arch in xray.setting(ctx, dataset, "archs"):
                chosen[dataset, arch] = xray.chosen_xray_lambdas(ctx, dataset, arch)
    return chosen


def plan_figure5(ctx: Context) -> list[PlannedRun]:
    """The sweep, then every method x seed once its lambda is chosen."""
    lams = chosen_lambdas(ctx)
    seeds = ctx.seeds or setting(ctx, "seeds")
    runs = mnist_sweep(ctx)
    for method, seed in product(METHODS, range(seeds)):
        if method not in PENALTY:
            runs.append(mnist_run(ctx, method, seed, None))
        elif lams[method] is not None:
            runs.append(mnist_run(ctx, method, seed, lams[method]))
    return runs


XRAY = "repro.papers.tap_xray"
TEACHERS = "repro.papers.tap_teachers"
prepare_xray = lazy(XRAY, "prepare_xray")


def prepare_all(ctx: Context) -> None:
    """Every TAP dataset: decoy MNIST, PNEU and KNEE."""
    prepare(ctx)
    prepare_xray(ctx)


def no_runs(ctx: Context) -> list[PlannedRun]:
    """Artefacts that train nothing (a benchmark, example images)."""
    return []


ARTEFACTS = {
    "figure5": Artefact("figure5", "Decoy MNIST: accuracy on the correlated test set and Delta (permuted - correlated)",
                        plan_figure5, report("figure5"), prepare=prepare),
    "lambdas": Artefact("lambdas", "Lambda sweep: final-epoch permuted-val CE per lambda, the chosen value per method",
                        plan_sweep, report("lambdas"), prepare=prepare),
    "table1": Artefact("table1", "Training speed (it/s) and memory at batch 16, 224 px: No XS, RRR, RBR, TAP x "
                       "VGG-16, ResNet-18, DenseNet-121, measured on this device; the text's cost claims", no_runs,
                       report_builder("tap_table1", "table1")),
    "figure1": Artefact("figure1", "Input gradients and activation maps of tagged PNEU images, ResNet-18 with RRR, RBR, TAP",
                        lazy("repro.papers.tap_figure1", "plan_figure1"), report_builder("tap_maps", "figure1"),
                        prepare=prepare_xray),
    "figure4": Artefact("figure4", "Contaminated examples: decoy MNIST, PNEU, KNEE", no_runs,
                        report_builder("tap_maps", "figure4"), prepare=prepare_all),
    "figure6": Artefact("figure6", "PNEU: F1 and Delta per architecture and method", lazy(XRAY, "plan_figure6"),
                        report_builder("tap_xray_report", "figure6"), prepare=prepare_xray),
    "figure7": Artefact("figure7", "KNEE: MAE and Delta per architecture and method", lazy(XRAY, "plan_figure7"),
                        report_builder("tap_xray_report", "figure7"), prepare=prepare_xray),
    "figure8": Artefact("figure8", "Teacher-mask precision and recall versus tau", lazy(TEACHERS, "plan_figure8"),
                        report_builder("tap_teacher_report", "figure8"), prepare=prepare_xray),
    "figure9": Artefact("figure9", "TAP with teacher and random masks; teacher F-scores (text numbers)",
                        lazy(TEACHERS, "plan_figure9"), report_builder("tap_teacher_report", "figure9"),
                        prepare=prepare_xray),
}

PAPER = Paper(
    name="tap",
    title="Zhang et al.: targeted activation penalties (TAP) vs RRR and RBR",
    default_seeds=MNIST["seeds"],
    switches=SWITCHES,
    prepare=prepare_all,
    artefacts=dict(sorted(ARTEFACTS.items(), key=lambda kv: (kv[1].kind != "table", len(kv[0]), kv[0]))),
)
