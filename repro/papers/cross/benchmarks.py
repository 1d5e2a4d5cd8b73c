"""`repro cross`: the methods of the four papers on each benchmark that can host them (issue 29). Torch-free.

One protocol: a benchmark keeps its home paper's data, model, recipe, metric and selection rule; a method keeps its
home paper's hyperparameters; its lambda on a benchmark is chosen by that benchmark's home protocol over the
method's home grid (under the profile, as the home paper's profile sets it), from seed-0 runs. A home cell (the
method on its own paper's benchmark) is built by the home paper's run builder unchanged, so it IS the paper
artefact's run (same key: no retraining when the artefact has run). A foreign cell is the benchmark's plain
(Classify / No XS) run with only the objective, the mask the method sees (`repro.papers.cross.masks`) and, for
Classify Masked, the training inputs changed (it keeps the plain run's other method settings: PNEU's class
weights, the evaluation batch). MaskTune and RandMask (annotation-free) finetune that plain
run itself for one epoch (`repro.papers.cross.finetune`).

The cross study is the one folder under repro/papers/ that imports other papers' modules (here TAP's decoy MNIST
and x-ray runs, actdiff's synthetic runs and MaskTune's biased MNIST runs); `tests/test_imports.py` names it as the one
exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from repro.config import Profiles, RunConfig, resolve_switches
from repro.papers import Context, PlannedRun
from repro.papers.actdiff import plans as actdiff
from repro.papers.masktune import plans as masktune
from repro.papers.tap import mnist as tap
from repro.papers.tap import xray

SEMANTICS = "cross-1"  # bump when a change alters what a foreign cell computes


@dataclass(frozen=True)
class Method:
    """A method of the study: its lambda'd term (None: none), its home paper, and which mask convention it reads
    (`repro.papers.cross.masks`: "avoid" or "look"; None: it reads no mask). A TAP or actdiff term is a penalty
    added to the benchmark's cross-entropy; a cfaug term (`cfaug`: the settings of its infills) is cfaug's own
    objective, trained by `repro.papers.cross.job`. `finetune` names the kind of a method that
    finetunes the plain run instead (`repro.papers.cross.finetune`: "masktune", "randmask")."""

    name: str
    penalty: str | None
    home: str
    reads: str | None
    masked_inputs: bool = False
    cfaug: dict[str, Any] | None = None
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
        if self.home == "cfaug":
            return list(SAL_GRID.get(ctx.profile, "sal"))
        return [actdiff.SYNTHETIC["lambda"]]  # actdiff spec §1.5: lambda fixed at 10 on synthetic, no sweep

    @property
    def trainer(self) -> str | None:
        """The job that trains its cells on a resident-tensor benchmark (`repro.papers.cross.job`); None: PackJob."""
        return "cross.cfaug" if self.cfaug is not None else None

    def method_args(self, ctx: Context, lam: float | None) -> dict[str, Any]:
        """Its run's method_args: the penalty objective with its home paper's switches (no reconstruction term:
        the benchmarks' models have no decoder), or cfaug's objective settings."""
        if self.cfaug is not None:
            sw = ctx.switches
            settings = {**self.cfaug, "sal": lam or 0.0, "cf_form": sw["cf_loss"], "sal_target": sw["sal_target"],
                        "sal_norm": sw["sal_norm"], "loss_norm": sw["loss_norm"], "shuffle": sw["shuffle"]}
            return {"cfaug": settings}
        if self.penalty is None:
            return {"objective": {}}
        if self.home == "tap":
            return {"objective": tap.penalty_objective(self.name, lam, ctx.switches)}
        return {"objective": actdiff.row_objective(ctx.switches, self.name, "cnn", lam, "bce")}  # "cnn": no recon


# cfaug's infills that need only a mask (not CAGAN's generator): CF(Tile), CCT's, removes the mask itself (C-14's
# CCT reading: these masks are pixel masks, not boxes); F(Shuffle), IN-9's and CCT's
CF_TILE = {"cf": "tile", "cf_rectangle": False}
F_SHUFFLE = {"f": "shuffle"}
# cfaug §1.9's Sal grid (Sec 3); quick and smoke: Waterbirds' lambda 10 alone (cfaug Table 1), as TAP's quick grids
# hold one value
SAL_GRID = Profiles({"sal": (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)}, quick={"sal": (10.0,)},
                    smoke={"sal": (10.0,)})

METHODS = (
    Method("Classify", None, "all", None),  # TAP's No XS, actdiff's Classify, MaskTune's ERM: plain cross-entropy
    Method("RRR", "rrr", "tap", "avoid"),
    Method("RBR", "rbr", "tap", "avoid"),
    Method("TAP", "tap", "tap", "avoid"),
    Method("Gradmask", "gradmask", "actdiff", "look"),
    Method("Actdiff", "actdiff", "actdiff", "look"),
    Method("Classify Masked", None, "actdiff", "look", masked_inputs=True),
    Method("CF(Tile)", None, "cfaug", "look", cfaug=CF_TILE),
    Method("F(Shuffle)", None, "cfaug", "look", cfaug=F_SHUFFLE),
    Method("Sal", "sal", "cfaug", "look", cfaug={}),
    Method("MaskTune", None, "masktune", None, finetune="masktune"),  # its own XGradCAM masks, no annotation
    Method("RandMask", None, "masktune", None, finetune="randmask"),
)
BY_NAME = {m.name: m for m in METHODS}

# Benchmarks of the issue without a page in this release, and why.
BENCHMARKS_NOT_YET = {
    "waterbirds": "not in this release: no Waterbirds data under the shared data root to build and test its page "
                  "on (its methods, cfaug's and MaskTune's, are hosted on the other benchmarks)",
    "in9": "not in this release: as Waterbirds",
}


@dataclass(frozen=True)
class Benchmark:
    """A benchmark and its home protocol. `home_methods` maps a study method to the home paper's method name (its
    cells are the home artefact's runs); `masks` the derivation each mask convention gets (`data.DERIVED`);
    `plain(ctx, seed)` the home paper's Classify run that foreign cells change; `home_run(ctx, method, seed, lam)`
    a home cell's run. `shifted` and `correlated` are (result part, split) pairs; the shifted split's `metric` is
    the benchmark's metric, the correlated one's its spurious-feature baseline (`value`: in the benchmark's
    scale, the results' values being in units of `unit`). `score(result)` rates a sweep run
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
    # the shifted and correlated metric (a result key of both splits) and its (worst, best) values
    metric: str = "accuracy"
    scale: tuple[float, float] = (0.0, 1.0)
    # profile -> why the benchmark plans no runs under it
    left_out: dict[str, str] = field(default_factory=dict)
    # profile -> (run-config changes of every cell, why): a study budget below the home paper's profile
    budget: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    # why its data cannot be trained on here (not prepared, a split absent), or None
    unready: Callable[[Context], str | None] = lambda ctx: None
    unit: float = 1.0  # 100: the home paper's results give the metric in %
    # the job that trains its foreign cells (a registered method), where the home paper's own job must (not PackJob)
    trainer: str | None = None

    def value(self, result: dict[str, Any], where: tuple[str, str]) -> float:
        """A run's metric on the split `where` = (result part, split), in the benchmark's scale."""
        part, split = where
        return result[part][split][self.metric] / self.unit


def _decoy_home(ctx: Context, method: str, seed: int, lam: float | None) -> PlannedRun:
    return tap.mnist_run(ctx, method, seed, lam)


def _synth_home(ctx: Context, method: str, seed: int, lam: float | None) -> PlannedRun:
    return actdiff.synthetic_run(ctx, "CNN", method, seed)  # lambda fixed at 10 inside (its one-value grid)


def masktune_context(ctx: Context) -> Context:
    """The context MaskTune's run builder reads: MaskTune's switches at the command's fidelity. They are not the
    cross study's options (their ids D-1, D-4 ... are TAP's too), so biased MNIST's home cells are `repro masktune
    figure2`'s runs at that fidelity, without switch overrides."""
    return replace(ctx, switches=resolve_switches(masktune.SWITCHES, ctx.fidelity, {}))


def _bmnist_home(ctx: Context, method: str, seed: int, lam: float | None = None) -> PlannedRun:
    """MaskTune's own biased-MNIST run (`repro masktune figure2`'s): erm, masktune or randmask."""
    masktune.prepared(ctx, ("biased_mnist",))  # its source must be recorded (a dry run before that: NotPrepared)
    return PlannedRun(f"biased_mnist {method} s{seed}", {"dataset": "biased_mnist", "method": method, "seed": seed},
                      masktune.run_config(masktune_context(ctx), "biased_mnist", method, seed))


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
    paper_seeds=tap.MNIST["seeds"], datasets=("mnist",),
    budget={"quick": ({"epochs": 1, "data": {"train_limit": 2250}},
                      "quick: 1 epoch over 2,250 of the 4,500 training digits (36 SGD steps of batch 64), not TAP "
                      "quick's 3 epochs over all, so that the cross study's quick profile fits 20 minutes on 2 CPU "
                      "cores (a pipeline check here: too short to learn the digits or the decoy); its home cells are "
                      "therefore not `repro tap figure5 --profile quick`'s runs")})

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
    budget={"quick": ({"epochs": 4}, "quick: 4 epochs, not actdiff quick's 10, so that the cross study's quick profile "
                      "fits 20 minutes on 2 CPU cores (at actdiff's quick budget every synth2 method but Classify "
                      "Masked and CF(Tile) stays at chance already); its home cells are therefore not `repro actdiff "
                      "table1 --profile quick`'s runs")},
    switch_changes={"TAP": ({"tap_downscale": "direct"},
                            "D-2 = direct (paper Eq. 7): the code's chained mask schedule cannot reach the CNN's 3x3 "
                            "layers from its 7x7 ones (it resizes by whole pooling factors)")})

XRAY_ARCH = "resnet18"  # TAP's smoke architecture, its Figure 1's and its teachers' (spec §2.4); the cheapest
XRAY_LEFT_OUT = {"quick": "not in the quick profile, which runs the MNIST-sized benchmarks in minutes on a CPU: "
                          "TAP's x-ray data alone take minutes to prepare there (PNEU: 5,840 images at 224 px); run "
                          "this page with --profile smoke (a pipeline check) or paper (a GPU)"}
XRAY_PROTOCOL = ("TAP's (its Figures 6, 7) on one architecture, ResNet-18 (ImageNet init; TAP's smoke architecture): "
                 "SGD lr 1e-5, batch 16, the final-epoch model; lambda = the lowest final-epoch permuted-val "
                 "cross-entropy{weighted} over the method's home grid, seed 0; ")


def _xray_unready(dataset: str) -> Callable[[Context], str | None]:
    def why(ctx: Context) -> str | None:
        try:
            xray.check_prepared(ctx, dataset)
        except FileNotFoundError as e:
            return str(e)
        return None

    return why


def _xray(dataset: str, title: str, metric: str, scale: tuple[float, float], protocol: str,
          not_hosted: dict[str, str], notes: dict[str, str], data: str) -> Benchmark:
    """TAP's `dataset` on `XRAY_ARCH`: home cells are `xray_run`'s (TAP's Figure 6 / 7 runs)."""
    def home(ctx: Context, method: str, seed: int, lam: float | None) -> PlannedRun:
        return xray.xray_run(ctx, dataset, XRAY_ARCH, method, seed, lam)

    weighted = " (class-weighted, D-13)" if xray.SETTINGS[dataset]["ce_weight"] else ""
    return Benchmark(
        name=dataset, title=f"{title} (TAP), ResNet-18: a corner text tag that encodes the label", home="tap",
        masks={"avoid": "tag", "look": "tag_band", None: "none"},
        home_methods={"Classify": "No XS", "RRR": "RRR", "RBR": "RBR", "TAP": "TAP"},
        plain=lambda ctx, seed: home(ctx, "No XS", seed, None), home_run=home,
        shifted=lambda ctx: ("final", "test"), correlated=("final", "test_cor"),
        score=lambda ctx, res: tap.final_valid_ce(res), protocol=XRAY_PROTOCOL.format(weighted=weighted) + protocol,
        not_hosted=not_hosted, paper_seeds=xray.SETTINGS[dataset]["seeds"], datasets=(data,),
        switch_changes={m: ({}, why) for m, why in notes.items()}, metric=metric, scale=scale,
        left_out=XRAY_LEFT_OUT, unready=_xray_unready(dataset))


CFAUG_PLAIN_CE = ("cfaug's objective trains with its own plain cross-entropy (no class weights); the benchmark's "
                  "weighted CE (D-13) is kept for the validation loss that chooses its lambda")
PNEU = _xray("pneu", "PNEU", "f1", (0.0, 1.0),
             "metric = F1 (pneumonia positive) on the permuted test set (each tag swapped), gap = permuted - "
             "correlated test F1 (TAP's Delta-F)", {},
             {m.name: CFAUG_PLAIN_CE for m in METHODS if m.cfaug is not None}, "chest_xray")
KNEE = _xray("knee", "KNEE", "mae", (4.0, 0.0),
             "metric = MAE of the KL grade (0-4; lower is better) on the permuted test set (a random tag), gap = "
             "permuted - correlated test MAE (TAP's Delta-MAE: above 0, the model reads the tag)",
             {"Gradmask": "its saliency is the two-class logit contrast |z0 - z1| (actdiff's code for its Eq. 2); "
                          "KNEE has 5 KL grades and the paper gives no multi-class reading"}, {}, "knee_kl224")

BIASED_MNIST = Benchmark(
    name="biased_mnist", title="Biased MNIST (MaskTune): 0-4 vs 5-9, a square on 99% of the 0-4 training images",
    home="masktune", masks={"avoid": "square", "look": "square_digit", None: "none"},
    home_methods={"Classify": "erm", "MaskTune": "masktune", "RandMask": "randmask"},
    plain=lambda ctx, seed: _bmnist_home(ctx, "erm", seed), home_run=_bmnist_home,
    shifted=lambda ctx: ("best", "test_biased"), correlated=("best", "val"),
    score=lambda ctx, res: -res["best"]["val"]["accuracy"],
    protocol="MaskTune's (its Figure 2): SmallCNN, SGD with momentum, constant lr (D-1), the first epoch of best val "
             "accuracy (best_erm; MaskTune and RandMask fine-tune the last ERM epoch once); metric = accuracy on the "
             "biased test set (a square on every 5-9, none on 0-4: the training correlation inverted), gap = biased "
             "test - val accuracy (val is drawn from the biased training images); lambda = the best val accuracy "
             "over the method's home grid, seed 0 (val is biased, so this favours small lambdas)",
    not_hosted={}, paper_seeds=masktune.SEEDS, datasets=("mnist",), unit=100.0,
    trainer="cross.masktune_erm")

BENCHMARKS = {b.name: b for b in (DECOY_MNIST, SYNTH2, BIASED_MNIST, PNEU, KNEE)}
# The datasets of the plain runs that MaskTune and RandMask finetune: their runs keep last.pt (`register`)
FINETUNED_DATASETS = ("decoy_mnist", "synthetic", "pneu", "knee")
QUICK_SEEDS = 3
SEEDS = Profiles({}, quick={"seeds": QUICK_SEEDS}, smoke={"seeds": 1})  # paper: each benchmark's home paper's seeds


def n_seeds(ctx: Context, bench: Benchmark) -> int:
    """--seeds, else the profile's (paper: the home paper's seeds)."""
    if ctx.seeds is not None:
        return ctx.seeds
    return SEEDS.get(ctx.profile, "seeds", bench.paper_seeds)


def hosted(bench: Benchmark) -> list[Method]:
    return [m for m in METHODS if m.name not in bench.not_hosted]


def budgeted(ctx: Context, bench: Benchmark, run: PlannedRun) -> PlannedRun:
    """`run` under the benchmark's budget for the profile: its config fields changed (a dict field, such as
    `data`, updated key by key) and its training-set size with a `train_limit`; unchanged without a budget."""
    changes = bench.budget.get(ctx.profile, ({}, ""))[0]
    if not changes:
        return run
    config = run.config.replace(**{k: {**getattr(run.config, k), **v} if isinstance(v, dict) else v
                                   for k, v in changes.items()})
    limit = config.data.get("train_limit")
    return replace(run, config=config, n_train=min(run.n_train, limit) if run.n_train and limit else run.n_train)


def cell_run(ctx: Context, bench: Benchmark, method: Method, seed: int, lam: float | None) -> PlannedRun:
    """One cell's run: the home paper's own run on its benchmark, else the benchmark's plain run with the method's
    objective, mask and inputs."""
    mask = method.mask(bench)
    cell = {"benchmark": bench.name, "method": method.name, "seed": seed, "lambda": lam,
            "home": method.name in bench.home_methods, "mask": mask}
    label = f"{bench.name} {method.name}{tap.lambda_label(lam)} s{seed}"
    if cell["home"]:
        return replace(budgeted(ctx, bench, bench.home_run(ctx, bench.home_methods[method.name], seed, lam)),
                       label=label, cell=cell)
    plain = budgeted(ctx, bench, bench.plain(ctx, seed))
    if method.finetune:
        return replace(plain, label=label, cell=cell, config=finetune_config(ctx, plain.config, method))
    base = plain.config
    data = {"home": base.dataset, "mask": mask, **({"masked_inputs": True} if method.masked_inputs else {}),
            **base.data}
    changes = bench.switch_changes.get(method.name, ({}, ""))[0]
    own = replace(ctx, switches={**ctx.switches, **changes})
    kept = {k: v for k, v in base.method_args.items() if k != "objective"}  # class weights, evaluation batch
    args = {**kept, **method.method_args(own, lam)}
    trainer = bench.trainer or method.trainer
    if trainer:
        args["trainer"] = trainer
    config = base.replace(paper="cross", dataset="cross", method=method.name, data=data, method_args=args,
                          semantics=SEMANTICS)
    after = tap.SWEEP if isinstance(lam, tap.PendingLambda) else ""
    return replace(plain, label=label, cell=cell, config=config, after=after)


def finetune_config(ctx: Context, erm: RunConfig, method: Method) -> RunConfig:
    """A MaskTune / RandMask cell (masktune spec §5.3-5.6): one epoch, selection final, continuing the plain run
    `erm` (named in full in `method_args["erm"]`, so its own key is reused); MaskTune's masks with masktune's
    switches D-26 (cam) and D-4 (threshold pixels) at the context's fidelity and k = 2 (§4.3)."""
    args = {**erm.method_args, "trainer": "cross.finetune", "finetune": method.finetune, "erm": erm.to_dict()}
    if method.finetune == "masktune":
        own = resolve_switches(tuple(s for s in masktune.SWITCHES if s.name in ("cam", "threshold_pixels")),
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


def absent(ctx: Context, bench: Benchmark) -> str | None:
    """Why `bench` has no runs in the matrix under `ctx` (a profile that leaves it out, data it cannot train on),
    or None."""
    return bench.left_out.get(ctx.profile) or bench.unready(ctx)


def plan_benchmark(ctx: Context, bench: Benchmark) -> list[PlannedRun]:
    """Every hosted method's sweep, then its seeds at the chosen lambda; none under a profile that leaves it out."""
    if ctx.profile in bench.left_out:
        return []
    runs = []
    for method in hosted(bench):
        runs += sweep(ctx, bench, method)
        lam = chosen_lambda(ctx, bench, method)
        if lam is not None or len(method.grid(ctx)) == 1:
            runs += [cell_run(ctx, bench, method, seed, lam) for seed in range(n_seeds(ctx, bench))]
    return runs


def main_runs(ctx: Context, bench: Benchmark, runs: list[PlannedRun]) -> list[PlannedRun]:
    """The runs of the table: each method's seeds at its chosen lambda (not the other sweep runs)."""
    chosen = {m.name: chosen_lambda(ctx, bench, m) for m in hosted(bench)}
    seeds = n_seeds(ctx, bench)
    return list({r.config.key: r for r in runs if r.cell["benchmark"] == bench.name
                 and r.cell["lambda"] == chosen[r.cell["method"]] and r.cell["seed"] < seeds}.values())
