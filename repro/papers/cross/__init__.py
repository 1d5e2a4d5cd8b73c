"""`repro cross` (issue 29): every method of the four papers on every benchmark that can host it, registered as a
study beside the papers. Its artefacts are the benchmarks (one table and one bar figure each) and the matrix of all
of them (a CSV and a heatmap). The benchmarks, methods and protocol are in `benchmarks`; the masks each method family
sees in `masks` (derived in the `cross` dataset, `data`, or batch by batch in `job` where the home paper trains
through its own job: biased MNIST); MaskTune's and RandMask's finetune in `finetune`; the tables and figures in
`report`. Torch-free at import.
"""

from __future__ import annotations

from functools import partial
from types import ModuleType

from repro.papers import Artefact, Context, Paper, PlannedRun, deferred
from repro.papers.actdiff.plans import SWITCHES as ACTDIFF_SWITCHES
from repro.papers.cfaug.plans import SWITCHES as CFAUG_SWITCHES
from repro.papers.cross.benchmarks import (BENCHMARKS, FINETUNED_DATASETS, QUICK_SEEDS, XRAY_LEFT_OUT, absent,
                                           plan_benchmark)
from repro.papers.masktune.plans import preparer as masktune_preparer
from repro.papers.tap.mnist import SWITCHES as TAP_SWITCHES
from repro.papers.tap.mnist import prepare as prepare_decoy_mnist
from repro.papers.tap.xray import prepare_xray

# the benchmarks' home runs read their own papers' switches; cfaug's methods the switches of its objective;
# biased MNIST's read MaskTune's at the command's fidelity (`benchmarks.masktune_context`: their ids D-1 ... are TAP's
# too, so they are not options here)
CFAUG_OBJECTIVE = ("sal_target", "sal_norm", "loss_norm", "shuffle", "cf_loss")
SWITCHES = TAP_SWITCHES + ACTDIFF_SWITCHES + tuple(s for s in CFAUG_SWITCHES if s.name in CFAUG_OBJECTIVE)
assert len({s.name for s in SWITCHES}) == len(SWITCHES), "the papers' switch names must not collide"


def _report() -> ModuleType:  # imports pandas: when a table is first built
    from repro.papers.cross import report

    return report


def _job() -> ModuleType:
    from repro.papers.cross import job

    return job


def register() -> None:
    """Register the `cross` dataset and the cells' jobs, and have the plain runs that MaskTune and RandMask finetune
    keep their last.pt (imports torch)."""
    from repro.data.registry import KEEP_LAST
    from repro.papers.cross import data, finetune, job  # noqa: F401

    KEEP_LAST.update(FINETUNED_DATASETS)


def prepare_tagged_xray(ctx: Context) -> None:
    """TAP's PNEU and KNEE (both, as TAP prepares them), unless the profile leaves the x-ray benchmarks out."""
    if ctx.profile not in XRAY_LEFT_OUT:
        prepare_xray(ctx)


PREPARE = {"decoy_mnist": prepare_decoy_mnist, "biased_mnist": masktune_preparer("biased_mnist"),
           "pneu": prepare_tagged_xray, "knee": prepare_tagged_xray}


def plan_all(ctx: Context) -> list[PlannedRun]:
    """Every benchmark's runs (the matrix's), less those of benchmarks it cannot have (`absent`)."""
    return [run for bench in BENCHMARKS.values() if absent(ctx, bench) is None for run in plan_benchmark(ctx, bench)]


def prepare_all(ctx: Context) -> None:
    """Every benchmark's derived data: decoy MNIST's, biased MNIST's recorded source, and TAP's x-ray sets where a
    data root is given (the matrix leaves out a benchmark whose data is not there)."""
    prepare_decoy_mnist(ctx)
    PREPARE["biased_mnist"](ctx)
    if ctx.data_root is not None:
        prepare_tagged_xray(ctx)


ARTEFACTS = {
    **{name: Artefact(name, f"{bench.title}: every hosted method, its protocol",
                      partial(plan_benchmark, bench=bench), partial(deferred(_report, "benchmark_table"), name),
                      prepare=PREPARE.get(name), datasets=bench.datasets)
       for name, bench in BENCHMARKS.items()},
    "matrix": Artefact("matrix", "Methods x benchmarks: shifted-test metric, gap and rank; home cells marked",
                       plan_all, deferred(_report, "matrix"), prepare=prepare_all,
                       datasets=("mnist",)),
}

PAPER = Paper(
    name="cross",
    title=f"Cross study: every method on every benchmark that can host it (quick: {QUICK_SEEDS} seeds)",
    artefacts=ARTEFACTS,
    switches=SWITCHES,
    default_seeds=QUICK_SEEDS,
    prepare=prepare_all,
    register=register,
    job=deferred(_job, "cross_job"),
)
