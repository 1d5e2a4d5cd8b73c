"""Zhang et al., "Targeted Activation Penalties Help CNNs Ignore Spurious Signals" (AAAI 2024;
specs/tap.md, papers/tap.txt).

This module holds the switches, the settings every TAP run shares and decoy MNIST (Figure 5): its runs and the
choice of lambda (lowest final-epoch permuted-val cross-entropy, `pick_lambdas`). Torch-free at import.
"""

from __future__ import annotations

from itertools import product
from pathlib import Path
from typing import Any, Callable

from repro.config import Profiles, RunConfig, Switch
from repro.papers import NOT_PREPARED, Context, PlannedRun
from repro.papers.tap.data_layout import META
from repro.runs.prepared import is_prepared, prepared_dir, read_record, recorded

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
           "2-5 (the code's vgg16_4_activations, the only one its overlap script supports)", (4, 5)),
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

PROFILES = Profiles(
    MNIST,
    # quick: one seed, one lambda per method, and batch 64 instead of 256 so that 3 epochs of the 4,500-digit
    # subset give 213 SGD steps (the paper: 10.5k steps over 54k digits); the output says whether No XS
    # collapses at this budget.
    quick={"epochs": 3, "seeds": 1, "batch_size": 64, "eval_limit": 2000,
           "grid": {"rrr": [1e-2], "tap": [1e-3], "rbr": [1e3]}},
    smoke={"epochs": 1, "seeds": 1, "train_limit": 256, "eval_limit": 500,
           "grid": {"rrr": [1e-2], "tap": [1e-3], "rbr": [1e3]}},
)

METHODS = ("Base", "No XS", "RRR", "RBR", "TAP")
PENALTY = {"RRR": "rrr", "RBR": "rbr", "TAP": "tap"}
PREPARED = "tap/decoy_mnist"
DATA_SEED = 0  # D-21: the code leaves some data draws unseeded; repro seeds them all with 0


def setting(ctx: Context, name: str) -> Any:
    return PROFILES.get(ctx.profile, name)


SWEEP = "the lambda sweep"  # what the runs at a chosen lambda wait for (`PlannedRun.after`)


class PendingLambda(float):
    """A dry-run plan's stand-in for a lambda its sweep has not chosen yet (the sweep's first value): the runs at
    the chosen lambda count and cost the same whichever value it is."""


def lambda_label(lam: float | None) -> str:
    """The lambda part of a run label."""
    if lam is None:
        return ""
    return " lambda=pending" if isinstance(lam, PendingLambda) else f" lambda={lam:g}"


def fingerprint(ctx: Context, folder: Path) -> str:
    """The prepared data's fingerprint, hashed once at preparation (meta.json), so runs are tied to the
    exact data they saw; a dry-run before preparation stands in `NOT_PREPARED`."""
    if ctx.dry_run and not is_prepared(folder, META):
        return NOT_PREPARED
    return read_record(folder, "run `repro data prepare tap --data-root DIR` first", META)["fingerprint"][:16]


def train_size(ctx: Context) -> int | None:
    """Decoy MNIST training images per epoch: as prepared, or in a dry-run as preparing would make them (the
    training file's size less the 10% val split); None where neither is known."""
    from repro.data.mnist_files import train_files

    meta = recorded(prepared_dir(ctx.runs_dir, PREPARED), META)
    if meta:
        n = meta["counts"]["train"]
    elif ctx.dry_run and ctx.data_root is not None:
        from repro.data.idx import read_idx
        from repro.papers.tap.data_staging import VAL_FRACTION

        total = len(read_idx(train_files(ctx.data_root / "MNIST")[1]))
        n = total - int(VAL_FRACTION * total)
    else:
        return None
    limit = setting(ctx, "train_limit")
    return min(n, limit) if limit else n


def prepare(ctx: Context) -> None:
    """Build decoy MNIST from the user's MNIST files under --data-root unless it is already prepared."""
    out = prepared_dir(ctx.runs_dir, PREPARED)
    if is_prepared(out, META):  # written last: the preparation is complete
        return
    if ctx.data_root is None:
        raise FileNotFoundError(
            "decoy MNIST is not prepared and no data root is given: pass --data-root DIR (or set REPRO_DATA) "
            "where DIR/MNIST holds the MNIST IDX files (train-images-idx3-ubyte.gz etc., or the 5k subset "
            "MNIST/subset/train-5k-*); `repro data check` shows what is found.")
    if ctx.dry_run:  # check that the files are there, write nothing
        from repro.data.mnist_files import test_files, train_files

        train_files(ctx.data_root / "MNIST")
        test_files(ctx.data_root / "MNIST")
        return
    from repro.papers.tap.data_prepare_decoy import prepare_decoy_mnist

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
    folder = prepared_dir(ctx.runs_dir, PREPARED)
    objective = penalty_objective(method, lam, ctx.switches)
    data = {"prepared": PREPARED, "fingerprint": fingerprint(ctx, folder),
            "variant": "clean" if method == "Base" else "contaminated"}
    for limit in ("train_limit", "eval_limit"):
        if setting(ctx, limit):
            data[limit] = setting(ctx, limit)
    config = RunConfig(
        paper="tap", dataset="decoy_mnist", model=MNIST["model"], method=method, seed=seed,
        epochs=setting(ctx, "epochs"), batch_size=setting(ctx, "batch_size"), lr=MNIST["lr"], data=data,
        method_args={"objective": objective}, optimizer=sgd(ctx.switches), metrics=("accuracy", "ce"),
        selection="final", semantics=SEMANTICS)
    label = f"MNIST {method}{lambda_label(lam)} s{seed}"
    return PlannedRun(label, {"dataset": "mnist", "method": method, "seed": seed, "lambda": lam}, config,
                      n_train=train_size(ctx), image_size=28, after=SWEEP if isinstance(lam, PendingLambda) else "")


def mnist_sweep(ctx: Context) -> list[PlannedRun]:
    """Seed-0 decoy MNIST runs of RRR, RBR and TAP over the lambda grid (§6)."""
    grid = setting(ctx, "grid")
    return [mnist_run(ctx, m, s, lam) for m in PENALTY for lam in grid[PENALTY[m]]
            for s in range(MNIST["sweep_seeds"])]


def pick_lambda(ctx: Context, sweep: list[PlannedRun], score: Callable[[dict[str, Any]], float]) -> float | None:
    """The lambda of one method's `sweep` whose run's result has the lowest `score` (the first of equal scores);
    None until every run of it is done (a dry-run: a `PendingLambda` of its first lambda)."""
    from repro.runs.store import RunStore

    store = RunStore(ctx.runs_dir)
    best: tuple[float, float] | None = None
    for run in sweep:
        rec = store.record(run.config)
        if not rec.path("done").exists():
            return PendingLambda(sweep[0].cell["lambda"]) if ctx.dry_run else None
        value = score(rec.result())
        if best is None or value < best[0]:
            best = (value, run.cell["lambda"])
    return best[1] if best else None


def final_valid_ce(result: dict[str, Any]) -> float:
    """TAP's sweep score: the final-epoch permuted-val cross-entropy."""
    return result["final"]["valid"]["ce"]


def pick_lambdas(ctx: Context, sweep: list[PlannedRun]) -> dict[str, float | None]:
    """Per penalty method, the lambda of `sweep` with the lowest final-epoch permuted-val CE (`pick_lambda`)."""
    return {m: pick_lambda(ctx, [r for r in sweep if r.cell["method"] == m], final_valid_ce) for m in PENALTY}


def chosen_lambdas(ctx: Context) -> dict[str, float | None]:
    """Decoy MNIST: per method, the lambda with the lowest final-epoch permuted-val CE (`pick_lambdas`)."""
    return pick_lambdas(ctx, mnist_sweep(ctx))


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
