"""Viviano et al., "Underwhelming generalization improvements from controlling feature attribution"

The artefact registry; settings and plans are in `plans` (torch-free at import).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from repro.papers import Artefact, Paper, Tolerance, lazy
from repro.papers.actdiff.plans import (ACCURACY_TOL, EPOCH_TOL, FIGURE_TASKS, MSD_TASKS, SWITCHES, SYNTHETIC,
                                        XRAY_PREPARE, plan_figure3, plan_figure6, plan_grid, plan_maps,
                                        plan_table2, plan_xray, plan_xray_maps, prepare_msd_tasks)

REPORTS = {"table2": "report", "figure4": "report_msd", "figure8": "report_msd",
           **dict.fromkeys(("table1", "figure1", "figure3", "figure6", "figure7"), "report_synthetic"),
           **dict.fromkeys(("figure5a", "figure5b", "figure9"), "report_xray")}


def _report(name: str) -> Callable[..., Any]:
    """The builder of artefact `name`, imported from its dataset's report module when first called."""
    return lazy(f"repro.papers.actdiff.{REPORTS[name]}", name)


XRAY_DATASETS = ("nih_cxr14", "padchest")  # `repro data check` names
MSD_DATASETS = {"liver": "msd_liver", "cardiac": "msd_heart", "pancreas": "msd_pancreas"}


def _maps(name: str, title: str) -> Artefact:
    """An MSD saliency figure of the tasks `FIGURE_TASKS[name]`, whose folders must be present."""
    tasks = FIGURE_TASKS[name]
    return Artefact(name, title, partial(plan_maps, tasks=tasks), _report(name),
                    prepare=partial(prepare_msd_tasks, tasks=tasks), datasets=tuple(MSD_DATASETS[t] for t in tasks))


ARTEFACTS = {
    "table1": Artefact("table1", "Synthetic: train and valid accuracy at the final epoch, best-valid epoch (22 rows)",
                       plan_grid, _report("table1"),
                       {"train": ACCURACY_TOL, "valid": ACCURACY_TOL, "best_epoch": EPOCH_TOL}),
    "table2": Artefact("table2", "Test accuracy at the best-valid epoch: synthetic (test and test_clean), Liver, "
                                 "Cardiac and Pancreas columns", plan_table2, _report("table2"),
                       {"synthetic": ACCURACY_TOL, **dict.fromkeys(MSD_TASKS, ACCURACY_TOL)},
                       prepare=partial(prepare_msd_tasks, skip_missing=True), datasets=tuple(MSD_DATASETS.values())),
    "figure1": Artefact("figure1", "Synthetic examples: train and valid, both classes, distractor marked",
                        lambda ctx: [], _report("figure1")),
    "figure3": Artefact("figure3", "Synthetic saliency maps on a valid image", plan_figure3, _report("figure3")),
    "figure4": _maps("figure4", "Liver and Cardiac (MSD) saliency maps: ResNet and UNet, top 10% of |gradient|"),
    "figure8": _maps("figure8", "Pancreas (MSD) saliency maps: ResNet and UNet, top 10% of |gradient|"),
    "figure6": Artefact("figure6", "Mask availability (synthetic): test accuracy and best epoch vs % masks",
                        plan_figure6, _report("figure6")),
    "figure7": Artefact("figure7", "Valid accuracy per epoch for all synthetic models", plan_grid, _report("figure7")),
    "figure5a": Artefact("figure5a", "X-ray saliency maps: a negative and a positive test image, one column per model",
                         plan_xray_maps, _report("figure5a"), prepare=XRAY_PREPARE, datasets=XRAY_DATASETS),
    "figure5b": Artefact("figure5b", "X-ray table: ResNet test accuracy, SPC 90% vs balanced", plan_xray,
                         _report("figure5b"), {"test": Tolerance(abs=0.05, k_std=2.0)}, prepare=XRAY_PREPARE,
                         datasets=XRAY_DATASETS),
    "figure9": Artefact("figure9", "Mean X-ray per site (NIH vs PadChest), SPC 90% split", lambda ctx: [],
                        _report("figure9"), prepare=XRAY_PREPARE, datasets=XRAY_DATASETS),
}


PAPER = Paper(
    name="actdiff",
    bench_cases=lazy("repro.papers.actdiff.bench", "bench_cases"),
    registers=("penalty_actdiff", "penalty_gradmask", "penalty_recon", "model_unet", "model_resnet",
               "data_synthetic", "data_xray", "data_msd"),
    title="Viviano et al.: activation difference (actdiff) and gradient masking (gradmask)",
    artefacts=dict(sorted(ARTEFACTS.items(), key=lambda kv: (kv[1].kind != "table", len(kv[0]), kv[0]))),
    switches=SWITCHES,
    default_seeds=SYNTHETIC["seeds"],
    prepare=lazy("repro.papers.actdiff.data_prepare", "prepare_present"),  # `repro data prepare actdiff`
)
