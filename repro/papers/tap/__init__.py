"""Zhang et al., "Targeted Activation Penalties Help CNNs Ignore Spurious Signals" (AAAI 2024;
specs/tap.md, papers/tap.txt): the artefact registry.

Switches, shared settings and decoy MNIST (Figure 5) are in `mnist`; the lambda sweeps (`lambdas` artefact) in
`lambdas`; PNEU and KNEE (Figures 6, 7) are planned in `xray`, the teacher-student pipeline (Figures 8, 9) in
`teachers`, Figure 1 in `figure1`. Table 1 (a timing, `table1_timing`) and Figure 4 (example images) train
nothing. Torch-free at import.
"""

from __future__ import annotations

from types import ModuleType

from repro.papers import Artefact, Context, Paper, PlannedRun, deferred
from repro.papers.tap.figure1 import plan_figure1
from repro.papers.tap.lambdas import plan_sweep
from repro.papers.tap.mnist import METHODS, MNIST, SWITCHES, plan_figure5, prepare
from repro.papers.tap.teachers import plan_figure8, plan_figure9
from repro.papers.tap.xray import plan_figure6, plan_figure7, prepare_xray

__all__ = ["METHODS", "MNIST", "PAPER", "SWITCHES"]

DATASETS = ("mnist", "chest_xray", "knee_kl224")  # `repro data check` names: decoy MNIST, PNEU, KNEE


# The modules below import pandas or torch: each is imported when one of its functions is first called.
def _report() -> ModuleType:
    from repro.papers.tap import report

    return report


def _report_table1() -> ModuleType:
    from repro.papers.tap import report_table1

    return report_table1


def _report_maps() -> ModuleType:
    from repro.papers.tap import report_maps

    return report_maps


def _report_xray() -> ModuleType:
    from repro.papers.tap import report_xray

    return report_xray


def _report_teachers() -> ModuleType:
    from repro.papers.tap import report_teachers

    return report_teachers


def _bench() -> ModuleType:
    from repro.papers.tap import bench

    return bench


def register() -> None:
    """Register TAP's penalties, models and dataset builders into the shared registries (imports torch)."""
    from repro.papers.tap import (data_decoy_mnist, data_tagged_xray, metrics, model_imagenet,  # noqa: F401
                                  model_tap_cnn, penalty_rbr, penalty_rrr, penalty_tap)


def prepare_all(ctx: Context) -> None:
    """Every TAP dataset: decoy MNIST, PNEU and KNEE."""
    prepare(ctx)
    prepare_xray(ctx)


def no_runs(ctx: Context) -> list[PlannedRun]:
    """Artefacts that train nothing (a benchmark, example images)."""
    return []


ARTEFACTS = {
    "figure5": Artefact("figure5", "Decoy MNIST: accuracy on the correlated test set and Delta (permuted - correlated)",
                        plan_figure5, deferred(_report, "figure5"), prepare=prepare, datasets=("mnist",)),
    "lambdas": Artefact("lambdas", "Lambda sweep: final-epoch permuted-val CE per lambda, the chosen value per method",
                        plan_sweep, deferred(_report, "lambdas"), prepare=prepare, datasets=DATASETS),
    "table1": Artefact("table1", "Training speed (it/s) and memory at batch 16, 224 px: No XS, RRR, RBR, TAP x "
                       "VGG-16, ResNet-18, DenseNet-121, measured on this device; the text's cost claims", no_runs,
                       deferred(_report_table1, "table1")),
    "figure1": Artefact("figure1", "Input gradients and activation maps of tagged PNEU images, ResNet-18 with RRR, "
                        "RBR, TAP", plan_figure1,
                        deferred(_report_maps, "figure1"),
                        prepare=prepare_xray, datasets=("chest_xray",)),
    "figure4": Artefact("figure4", "Contaminated examples: decoy MNIST, PNEU, KNEE", no_runs,
                        deferred(_report_maps, "figure4"), prepare=prepare_all, datasets=DATASETS),
    "figure6": Artefact("figure6", "PNEU: F1 and Delta per architecture and method", plan_figure6,
                        deferred(_report_xray, "figure6"), prepare=prepare_xray,
                        datasets=("chest_xray",)),
    "figure7": Artefact("figure7", "KNEE: MAE and Delta per architecture and method", plan_figure7,
                        deferred(_report_xray, "figure7"), prepare=prepare_xray,
                        datasets=("knee_kl224",)),
    "figure8": Artefact("figure8", "Teacher-mask precision and recall versus tau", plan_figure8,
                        deferred(_report_teachers, "figure8"), prepare=prepare_xray,
                        datasets=DATASETS[1:]),
    "figure9": Artefact("figure9", "TAP with teacher and random masks; teacher F-scores (text numbers)",
                        plan_figure9, deferred(_report_teachers, "figure9"),
                        prepare=prepare_xray, datasets=DATASETS[1:]),
}

PAPER = Paper(
    name="tap",
    bench_cases=deferred(_bench, "bench_cases"),
    register=register,
    title="Zhang et al.: targeted activation penalties (TAP) vs RRR and RBR",
    default_seeds=MNIST["seeds"],
    switches=SWITCHES,
    prepare=prepare_all,
    artefacts=dict(sorted(ARTEFACTS.items(), key=lambda kv: (kv[1].kind != "table", len(kv[0]), kv[0]))),
)
