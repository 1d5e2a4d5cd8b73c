"""`repro cross`: the methods of the four papers on each benchmark that can host them (issue 29). Torch-free.

One protocol: a benchmark keeps its home paper's data, model, recipe, metric and selection rule; a method keeps its
home paper's hyperparameters; its lambda on a benchmark is chosen by that benchmark's home protocol over the
method's home grid (under the profile, as the home paper's profile sets it), from seed-0 runs. A home cell (the
method on its own paper's benchmark) is built by the home paper's run builder unchanged, so it IS the paper
artefact's run (same key: no retraining when the artefact has run). A foreign cell is the benchmark's plain
(Classify / No XS) run with only the objective, the mask the method sees (`repro.papers.cross.masks`) and, for
Classify Masked, the training inputs changed. MaskTune and RandMask (annotation-free) finetune that plain run itself
for one epoch (`repro.papers.cross.finetune`).

The cross study is the one folder under repro/papers/ that imports other papers' modules (here TAP's decoy MNIST
runs and actdiff's synthetic runs); `tests/test_imports.py` names it as the one exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from repro.config import Profiles, RunConfig, resolve_switches
from repro.papers import Context, PlannedRun
from repro.papers.actdiff import plans as actdiff
from repro.papers.masktune.plans import SWITCHES as MASKTUNE_SWITCHES
from repro.papers.tap import mnist as tap

SEMANTICS = "cross-1"  # bump when a change alters what a foreign cell computes


@dataclass(frozen=True)
class Method:
    """A method of the study: its penalty (None: plain cross-entropy), its home paper, and which mask convention
    it reads (`repro.papers.cross.masks`: "avoid" or "look"; None: it reads no mask). `finetune` names the job of a
    method that finetunes the plain run instead (`repro.papers.cross.finetune`: "masktune", "randmask")."""

    name: str
    penalty: str | None
    home: str
    reads: str | None
    masked_inputs: bool = False
    finetune: str | None = None

    def mask(self, bench: Benchmark) -> str:
        """The `masks.MASKS` name of what it sees on `bench`: the derivation of the convention it reads, or, for a
        finetune, its own masking."""
        return self.finetune or bench.masks[self.reads]

    def grid(self, ctx: Context) -> list[float | None]:
        """The lambda candidates of its home paper under the profile; [None] for a method without a lambda."""
        if self.penalty is None:
            return [None]
        if self.home == "tap":
            return list(tap.setting(ctx, "grid")[self.penalty])  # spec tap §6, per profile
        return [actdiff.SYNTHETIC["lambda"]]  # actdiff spec §1.5: lambda fixed at 10 on synthetic, no sweep

    def objective(self, ctx: Context, lam: float | None) -> dict[str, dict[str, Any]]:
        """Its loss terms with its home paper's switches (no reconstruction term: the benchmarks' models have no
        decoder)."""
        if self.penalty is None:
            return {}
        if self.home == "tap":
            return tap.penalty_objective(self.name, lam, ctx.switches)
        return actdiff.row_objective(ctx.switches, self.name, "cnn", lam, "bce")  # "cnn": a classifier, no recon


METHODS = (
    Method("Classify", None, "both", None),  # TAP's No XS and actdiff's Classify: plain cross-entropy
    Method("RRR", "rrr", "tap", "avoid"),
    Method("RBR", "rbr", "tap", "avoid"),
    Method("TAP", "tap", "tap", "avoid"),
    Method("Gradmask", "gradmask", "actdiff", "look"),
    Method("Actdiff", "actdiff", "actdiff", "look"),
    Method("Classify Masked", None, "actdiff", "look", masked_inputs=True),
    Method("MaskTune", None, "masktune", None, finetune="masktune"),
    Method("RandMask", None, "masktune", None, finetune="randmask"),
)
BY_NAME = {m.name: m for m in METHODS}

# Methods of the issue without a cell in this release, on every benchmark, and why.
NOT_YET = {
    "CF augmentation": "not in this release: cfaug trains through its own job (augmented batches, "
                       "`repro.papers.cfaug.train`); it needs a foreground/background feed on these benchmarks' "
                       "resident tensors",
    "F augmentation": "not in this release: as CF augmentation (cfaug's own job; a foreground/background feed)",
    "Sal": "not in this release: cfaug's saliency loss trains through cfaug's own job, as CF augmentation",
}
# Benchmarks of the issue without a page in this release, and why.
BENCHMARKS_NOT_YET = {
    "biased_mnist": "not in this release: MaskTune's biased MNIST has no annotation mask in its builder yet (the "
                    "square's position would give AVOID)",
    "pneu": "not in this release: TAP's PNEU (224 px, ImageNet models) is not MNIST-sized; its cells need the x-ray "
            "run builders and a GPU budget",
    "knee": "not in this release: TAP's KNEE, as PNEU",
    "waterbirds": "not in this release: the data is not under the shared data root, and its methods (cfaug, "
                  "MaskTune) are not yet hosted",
    "in9": "not in this release: as Waterbirds",
}


@dataclass(frozen=True)
class Benchmark:
    """A benchmark and its home protocol. `home_methods` maps a study method to the home paper's method name (its
    cells are the home artefact's runs); `masks` the derivation each mask convention gets (`data.DERIVED`);
    `plain(ctx, seed)` the home paper's Classify run that foreign cells change; `home_run(ctx, method, seed, lam)`
    a home cell's run. `shifted` and `correlated` are (result part, split) pairs; the shifted split's accuracy is
    the benchmark's metric, the correlated one's its spurious-feature baseline. `score(result)` rates a sweep run
    (lower is better)."""

    name: str
    title: str
    home: str
    masks: dict[str | None, str]
    home_methods: dict[str, str]
    plain: Callable[[Context, int], PlannedRun]
    home_run: Callable[[Context, str, int, float | None], PlannedRun]
    shifted: Callable[[Context], tuple[str, str]]
    correlated: tuple[str, str]
    score: Callable[[Context, dict[str, Any]], float]
    protocol: str
    not_hosted: dict[str, str]
    paper_seeds: int
    datasets: tuple[str, ...] = ()
    # method -> (switch values its foreign cells use instead, why): where the default reading cannot run here
    switch_changes: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)


def _decoy_home(ctx: Context, method: str, seed: int, lam: float | None) -> PlannedRun:
    return tap.mnist_run(ctx, method, seed, lam)


def _synth_home(ctx: Context, method: str, seed: int, lam: float | None) -> PlannedRun:
    return actdiff.synthetic_run(ctx, "CNN", method, seed)  # lambda fixed at 10 inside (its one-value grid)


DECOY_MNIST = Benchmark(
    name="decoy_mnist", title="Decoy MNIST (TAP): 4x4 corner patch whose value encodes the label", home="tap",
    masks={"avoid": "patch", "look": "digit", None: "none"},
    home_methods={"Classify": "No XS", "RRR": "RRR", "RBR": "RBR", "TAP": "TAP"},
    plain=lambda ctx, seed: tap.mnist_run(ctx, "No XS", seed, None), home_run=_decoy_home,
    shifted=lambda ctx: ("final", "test"), correlated=("final", "test_cor"),
    score=lambda ctx, res: res["final"]["valid"]["ce"],
    protocol="TAP's (its Figure 5): the two-layer CNN, SGD, final-epoch model; metric = accuracy on the permuted test "
             "set, gap = permuted - correlated test accuracy (TAP's Delta); lambda = the lowest final-epoch "
             "permuted-val cross-entropy over the method's home grid, seed 0",
    not_hosted={"Gradmask": "its saliency is the two-class logit contrast |z0 - z1| (actdiff's code for its Eq. 2); "
                            "decoy MNIST has 10 classes and the paper gives no multi-class reading"},
    paper_seeds=tap.MNIST["seeds"], datasets=("mnist",))

SYNTH2 = Benchmark(
    name="synth2", title="synth2 (actdiff): count the crosses; a box marks the class in train, inverted in valid/test",
    home="actdiff", masks={"avoid": "not_roi", "look": "roi", None: "none"},
    home_methods={"Classify": "Classify", "Gradmask": "Gradmask", "Actdiff": "Actdiff",
                  "Classify Masked": "Classify Masked"},
    plain=lambda ctx, seed: actdiff.synthetic_run(ctx, "CNN", "Classify", seed), home_run=_synth_home,
    shifted=lambda ctx: ("best", ctx.switches["synthetic_test"]), correlated=("best", "train"),
    score=lambda ctx, res: -res["best"]["valid"][ctx.switches["selection_metric"]],
    protocol="actdiff's (its Tables 1 and 2): the CNN (UNet encoder), Adam, the first epoch of best valid accuracy; "
             "metric = test accuracy there (the box inverted, Table 2; switch A-2), gap = test - train accuracy (the "
             "box agrees with the label in train only); lambda = the best valid accuracy over the method's home "
             "grid, seed 0",
    not_hosted={}, paper_seeds=actdiff.SYNTHETIC["seeds"],
    switch_changes={"TAP": ({"tap_downscale": "direct"},
                            "D-2 = direct (paper Eq. 7): the code's chained mask schedule cannot reach the CNN's 3x3 "
                            "layers from its 7x7 ones (it resizes by whole pooling factors)")})

BENCHMARKS = {b.name: b for b in (DECOY_MNIST, SYNTH2)}
# The datasets of the plain runs that MaskTune and RandMask finetune: their runs keep last.pt (`register`)
FINETUNED_DATASETS = ("decoy_mnist", "synthetic")
QUICK_SEEDS = 3
SEEDS = Profiles({}, quick={"seeds": QUICK_SEEDS}, smoke={"seeds": 1})  # paper: each benchmark's home paper's seeds


def n_seeds(ctx: Context, bench: Benchmark) -> int:
    """--seeds, else the profile's (paper: the home paper's seeds)."""
    if ctx.seeds is not None:
        return ctx.seeds
    return SEEDS.get(ctx.profile, "seeds", bench.paper_seeds)


def hosted(bench: Benchmark) -> list[Method]:
    return [m for m in METHODS if m.name not in bench.not_hosted]


def cell_run(ctx: Context, bench: Benchmark, method: Method, seed: int, lam: float | None) -> PlannedRun:
    """One cell's run: the home paper's own run on its benchmark, else the benchmark's plain run with the method's
    objective, mask and inputs."""
    mask = method.mask(bench)
    cell = {"benchmark": bench.name, "method": method.name, "seed": seed, "lambda": lam,
            "home": method.name in bench.home_methods, "mask": mask}
    label = f"{bench.name} {method.name}{tap.lambda_label(lam)} s{seed}"
    if cell["home"]:
        return replace(bench.home_run(ctx, bench.home_methods[method.name], seed, lam), label=label, cell=cell)
    plain = bench.plain(ctx, seed)
    if method.finetune:
        return replace(plain, label=label, cell=cell, config=finetune_config(ctx, plain.config, method))
    base = plain.config
    data = {"home": base.dataset, "mask": mask, **({"masked_inputs": True} if method.masked_inputs else {}),
            **base.data}
    changes = bench.switch_changes.get(method.name, ({}, ""))[0]
    own = replace(ctx, switches={**ctx.switches, **changes})
    config = base.replace(paper="cross", dataset="cross", method=method.name, data=data,
                          method_args={"objective": method.objective(own, lam)}, semantics=SEMANTICS)
    after = tap.SWEEP if isinstance(lam, tap.PendingLambda) else ""
    return replace(plain, label=label, cell=cell, config=config, after=after)


def finetune_config(ctx: Context, erm: RunConfig, method: Method) -> RunConfig:
    """A MaskTune / RandMask cell (masktune spec §5.3-5.6): one epoch, selection final, continuing the plain run
    `erm` (named in full in `method_args["erm"]`, so its own key is reused); MaskTune's masks with masktune's
    switches D-26 (cam) and D-4 (threshold pixels) at the context's fidelity and k = 2 (§4.3)."""
    args = {**erm.method_args, "trainer": method.finetune, "erm": erm.to_dict()}
    if method.finetune == "masktune":
        own = resolve_switches(tuple(s for s in MASKTUNE_SWITCHES if s.name in ("cam", "threshold_pixels")),
                               ctx.fidelity, {})
        args |= {**own, "threshold_k": 2.0}
    return erm.replace(paper="cross", method=method.name, epochs=1, selection="final", method_args=args,
                       semantics=SEMANTICS)


def sweep(ctx: Context, bench: Benchmark, method: Method) -> list[PlannedRun]:
    """The seed-0 runs over the method's grid; none where the grid has one value (nothing to choose)."""
    grid = method.grid(ctx)
    return [cell_run(ctx, bench, method, 0, lam) for lam in grid] if len(grid) > 1 else []


def chosen_lambda(ctx: Context, bench: Benchmark, method: Method) -> float | None:
    """The lambda of the benchmark's protocol (`Benchmark.score`, the first of equal scores): the grid's one value,
    else None until every sweep run is done (a dry run: a `PendingLambda` stand-in)."""
    grid = method.grid(ctx)
    if len(grid) == 1:
        return grid[0]
    return tap.pick_lambda(ctx, sweep(ctx, bench, method), lambda result: bench.score(ctx, result))


def plan_benchmark(ctx: Context, bench: Benchmark) -> list[PlannedRun]:
    """Every hosted method's sweep, then its seeds at the chosen lambda."""
    runs = []
    for method in hosted(bench):
        runs += sweep(ctx, bench, method)
        lam = chosen_lambda(ctx, bench, method)
        if lam is not None or method.penalty is None:
            runs += [cell_run(ctx, bench, method, seed, lam) for seed in range(n_seeds(ctx, bench))]
    return runs


def main_runs(ctx: Context, bench: Benchmark, runs: list[PlannedRun]) -> list[PlannedRun]:
    """The runs of the table: each method's seeds at its chosen lambda (not the other sweep runs)."""
    chosen = {m.name: chosen_lambda(ctx, bench, m) for m in hosted(bench)}
    seeds = n_seeds(ctx, bench)
    return list({r.config.key: r for r in runs if r.cell["benchmark"] == bench.name
                 and r.cell["lambda"] == chosen[r.cell["method"]] and r.cell["seed"] < seeds}.values())
