"""`repro cross` (issue 29): every method of the four papers on every benchmark that can host it, registered as a
study beside the papers. Its artefacts are the benchmarks (one table and one bar figure each) and the matrix of all
of them (a CSV and a heatmap). The benchmarks, methods and protocol are in `benchmarks`; the masks each method family
sees in `masks` (derived in the `cross` dataset, `data`); MaskTune's and RandMask's finetune in `finetune`; the tables
and figures in `report`. Torch-free at import.
"""

from __future__ import annotations

from functools import partial
from types import ModuleType

from repro.papers import Artefact, Context, Paper, PlannedRun, deferred
from repro.papers.actdiff.plans import SWITCHES as ACTDIFF_SWITCHES
from repro.papers.cross.benchmarks import BENCHMARKS, FINETUNED_DATASETS, QUICK_SEEDS, plan_benchmark
from repro.papers.tap.mnist import SWITCHES as TAP_SWITCHES
from repro.papers.tap.mnist import prepare as prepare_decoy_mnist

SWITCHES = TAP_SWITCHES + ACTDIFF_SWITCHES  # the benchmarks' home runs read their own papers' switches
assert len({s.name for s in SWITCHES}) == len(SWITCHES), "TAP and actdiff switch names must not collide"


def _report() -> ModuleType:  # imports pandas: when a table is first built
    from repro.papers.cross import report

    return report


def _finetune() -> ModuleType:  # imports torch: when a run starts
    from repro.papers.cross import finetune

    return finetune


def register() -> None:
    """Register the `cross` dataset, and have the plain runs that MaskTune and RandMask finetune keep their last.pt
    (imports torch)."""
    from repro.data.registry import KEEP_LAST
    from repro.papers.cross import data  # noqa: F401

    KEEP_LAST.update(FINETUNED_DATASETS)


PREPARE = {"decoy_mnist": prepare_decoy_mnist}


def plan_all(ctx: Context) -> list[PlannedRun]:
    """Every benchmark's runs (the matrix's)."""
    return [run for bench in BENCHMARKS.values() for run in plan_benchmark(ctx, bench)]


def prepare_all(ctx: Context) -> None:
    """Every benchmark's derived data (decoy MNIST's)."""
    for prepare in PREPARE.values():
        prepare(ctx)


ARTEFACTS = {
    **{name: Artefact(name, f"{bench.title}: every hosted method, its protocol",
                      partial(plan_benchmark, bench=bench), partial(deferred(_report, "benchmark_table"), name),
                      prepare=PREPARE.get(name), datasets=bench.datasets)
       for name, bench in BENCHMARKS.items()},
    "matrix": Artefact("matrix", "Methods x benchmarks: shifted-test accuracy, gap and rank; home cells marked",
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
    job=deferred(_finetune, "cross_job"),
)
