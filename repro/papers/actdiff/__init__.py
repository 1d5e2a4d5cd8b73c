"""Viviano et al., "Underwhelming generalization improvements from controlling feature attribution"

The artefact registry; settings and plans are in `plans` (torch-free at import).
"""

from __future__ import annotations

from functools import partial
from types import ModuleType
from typing import Any, Callable

from repro.papers import Artefact, Paper, Tolerance, deferred
from repro.papers.actdiff.plans import (ACCURACY_TOL, EPOCH_TOL, FIGURE_TASKS, MSD_TASKS, SWITCHES, SYNTHETIC,
                                        plan_figure3, plan_figure6, plan_grid, plan_maps, plan_table2, plan_xray,
                                        plan_xray_maps, prepare_msd_tasks)


# The modules below import numpy, pandas or torch: each is imported when one of its functions is first called.
def _report() -> ModuleType:
    from repro.papers.actdiff import report

    return report


def _report_synthetic() -> ModuleType:
    from repro.papers.actdiff import report_synthetic

    return report_synthetic


def _report_xray() -> ModuleType:
    from repro.papers.actdiff import report_xray

    return report_xray


def _report_msd() -> ModuleType:
    from repro.papers.actdiff import report_msd

    return report_msd


def _bench() -> ModuleType:
    from repro.papers.actdiff import bench

    return bench


def _data_prepare() -> ModuleType:
    from repro.papers.actdiff import data_prepare

    return data_prepare


def _xray_sources() -> ModuleType:
    from repro.papers.actdiff import xray_sources

    return xray_sources


def register() -> None:
    """Register actdiff's penalties, models and dataset builders into the shared registries (imports torch)."""
    from repro.papers.actdiff import (data_msd, data_synthetic, data_xray, model_resnet,  # noqa: F401
                                      model_unet, penalty_actdiff, penalty_gradmask, penalty_recon)


# Each artefact's builder, in its dataset's report module (Table 2 spans datasets: `report`).
REPORTS = {"table2": _report, "figure4": _report_msd, "figure8": _report_msd,
           **dict.fromkeys(("table1", "figure1", "figure3", "figure6", "figure7"), _report_synthetic),
           **dict.fromkeys(("figure5a", "figure5b", "figure9"), _report_xray)}


def _build(name: str) -> Callable[..., Any]:
    """The builder of artefact `name`, imported from its report module when first called."""
    return deferred(REPORTS[name], name)


XRAY_PREPARE = deferred(_xray_sources, "prepare_xray_sources")
XRAY_DATASETS = ("nih_cxr14", "padchest")  # `repro data check` names
MSD_DATASETS = {"liver": "msd_liver", "cardiac": "msd_heart", "pancreas": "msd_pancreas"}


def _maps(name: str, title: str) -> Artefact:
    """An MSD saliency figure of the tasks `FIGURE_TASKS[name]`, whose folders must be present."""
    tasks = FIGURE_TASKS[name]
    return Artefact(name, title, partial(plan_maps, tasks=tasks), _build(name),
                    prepare=partial(prepare_msd_tasks, tasks=tasks), datasets=tuple(MSD_DATASETS[t] for t in tasks))


ARTEFACTS = {
    "table1": Artefact("table1", "Synthetic: train and valid accuracy at the final epoch, best-valid epoch (22 rows)",
                       plan_grid, _build("table1"),
                       {"train": ACCURACY_TOL, "valid": ACCURACY_TOL, "best_epoch": EPOCH_TOL}),
    "table2": Artefact("table2", "Test accuracy at the best-valid epoch: synthetic (test and test_clean), Liver, "
                                 "Cardiac and Pancreas columns", plan_table2, _build("table2"),
                       {"synthetic": ACCURACY_TOL, **dict.fromkeys(MSD_TASKS, ACCURACY_TOL)},
                       prepare=partial(prepare_msd_tasks, skip_missing=True), datasets=tuple(MSD_DATASETS.values())),
    "figure1": Artefact("figure1", "Synthetic examples: train and valid, both classes, distractor marked",
                        lambda ctx: [], _build("figure1")),
    "figure3": Artefact("figure3", "Synthetic saliency maps on a valid image", plan_figure3, _build("figure3")),
    "figure4": _maps("figure4", "Liver and Cardiac (MSD) saliency maps: ResNet and UNet, top 10% of |gradient|"),
    "figure8": _maps("figure8", "Pancreas (MSD) saliency maps: ResNet and UNet, top 10% of |gradient|"),
    "figure6": Artefact("figure6", "Mask availability (synthetic): test accuracy and best epoch vs % masks",
                        plan_figure6, _build("figure6")),
    "figure7": Artefact("figure7", "Valid accuracy per epoch for all synthetic models", plan_grid, _build("figure7")),
    "figure5a": Artefact("figure5a", "X-ray saliency maps: a negative and a positive test image, one column per model",
                         plan_xray_maps, _build("figure5a"), prepare=XRAY_PREPARE, datasets=XRAY_DATASETS),
    "figure5b": Artefact("figure5b", "X-ray table: ResNet test accuracy, SPC 90% vs balanced", plan_xray,
                         _build("figure5b"), {"test": Tolerance(abs=0.05, k_std=2.0)}, prepare=XRAY_PREPARE,
                         datasets=XRAY_DATASETS),
    "figure9": Artefact("figure9", "Mean X-ray per site (NIH vs PadChest), SPC 90% split", lambda ctx: [],
                        _build("figure9"), prepare=XRAY_PREPARE, datasets=XRAY_DATASETS),
}


PAPER = Paper(
    name="actdiff",
    bench_cases=deferred(_bench, "bench_cases"),
    register=register,
    title="Viviano et al.: activation difference (actdiff) and gradient masking (gradmask)",
    artefacts=dict(sorted(ARTEFACTS.items(), key=lambda kv: (kv[1].kind != "table", len(kv[0]), kv[0]))),
    switches=SWITCHES,
    default_seeds=SYNTHETIC["seeds"],
    prepare=deferred(_data_prepare, "prepare_present"),  # `repro data prepare actdiff`
)
