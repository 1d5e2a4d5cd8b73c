"""Chang, Adam, Goldenberg, "Towards Robust Classification Model by Counterfactual and Invariant Data

The artefact registry; settings and plans are in `plans` (torch-free at import).
"""

from __future__ import annotations

from functools import partial
from types import ModuleType

from repro.papers import Artefact, Paper, deferred
from repro.papers.cfaug.plans import (EXAMPLE_ROWS, EXAMPLE_TITLES, RATIO_SET, SALIENCY_TABLES, SCATTERS, SEEDS,
                                      SHIFT_ROWS, SWITCHES, TABLE_DATASET, _saliency_rows, plan, prepare_for,
                                      ratio_plan, scatter_plan)

# `repro data check` names of what each dataset reads under the data root
DATASETS = {"in9": ("in9_train", "bg_challenge_test"), "waterbirds": ("waterbirds",), "cct": ("cct",)}


# The modules below import pandas or torch: each is imported when one of its functions is first called.
def _report() -> ModuleType:
    from repro.papers.cfaug import report

    return report


def _figures() -> ModuleType:
    from repro.papers.cfaug import report_figures

    return report_figures


def _examples() -> ModuleType:
    from repro.papers.cfaug import report_examples

    return report_examples


def _scatter() -> ModuleType:
    from repro.papers.cfaug import report_scatter

    return report_scatter


def _ratio() -> ModuleType:
    from repro.papers.cfaug import report_ratio

    return report_ratio


def _bench() -> ModuleType:
    from repro.papers.cfaug import bench

    return bench


def _train() -> ModuleType:
    from repro.papers.cfaug import train

    return train


def register() -> None:
    """Register cfaug's models and its objective with its terms (`losses` imports the term_* modules) into the
    shared registries (imports torch)."""
    from repro.papers.cfaug import losses, model_bit  # noqa: F401


def _table(name: str, title: str) -> Artefact:
    return Artefact(name, title, partial(plan, dataset=TABLE_DATASET[name]), deferred(_report, "accuracy_table"),
                    prepare=prepare_for(TABLE_DATASET[name]), datasets=DATASETS[TABLE_DATASET[name]])


def _saliency_table(name: str, title: str) -> Artefact:
    dataset = SALIENCY_TABLES[name][0]
    return Artefact(name, title, lambda ctx: plan(ctx, dataset, _saliency_rows(name)), deferred(_report, "saliency_table"),
                    prepare=prepare_for(dataset), datasets=DATASETS[dataset])


ARTEFACTS = {
    "table1": _table("table1", "IN-9 accuracy on four test sets"),
    "table2": _saliency_table("table2", "IN-9 saliency AUPR (DeepLiftShap) and accuracy"),
    "table3": Artefact("table3", "IN-9 next-class probability shift (Mixed-Next vs Original)",
                       partial(plan, dataset="in9", only=SHIFT_ROWS), deferred(_report, "shift_table"),
                       prepare=prepare_for("in9"), datasets=DATASETS["in9"]),
    "table4": _table("table4", "Waterbirds accuracy (Original and Flip)"),
    "table5": _saliency_table("table5", "Waterbirds saliency AUPR and accuracy"),
    "table6": _table("table6", "CCT macro AUC (Cis and Trans)"),
    "table7": _saliency_table("table7", "CCT saliency AUPR and AUC"),
    "table8": Artefact("table8", "Training hyperparameters: ours beside the paper's appendix A.1",
                       lambda ctx: [], deferred(_report, "hyperparameter_table")),
    **{name: Artefact(name, title, partial(plan, dataset=EXAMPLE_ROWS[name][0], only=EXAMPLE_ROWS[name][1],
                                           first_seed=True), deferred(_examples, name),
                      prepare=prepare_for(EXAMPLE_ROWS[name][0]), datasets=DATASETS[EXAMPLE_ROWS[name][0]])
       for name, title in EXAMPLE_TITLES.items()},
    **{name: Artefact(name, f"{'IN-9' if d == 'in9' else 'Waterbirds' if d == 'waterbirds' else 'CCT'} scatter: "
                            f"saliency AUPR vs {'AUC' if d == 'cct' else 'accuracy'} of every trained model, with R^2",
                      partial(scatter_plan, dataset=d), deferred(_scatter, "scatter"),
                      prepare=prepare_for(d), datasets=DATASETS[d])
       for name, (d, _, _) in SCATTERS.items()},
    "figure5": Artefact("figure5", f"IN-9 {RATIO_SET} accuracy vs training data ratio (<1: subsets; >1: extra "
                        "unmasked IN-9L images)", ratio_plan, deferred(_ratio, "figure5"),
                        prepare=prepare_for("in9"), datasets=(*DATASETS["in9"], "in9l")),
    "figure2": Artefact("figure2", "Examples of every CF and F generator on fixed training images",
                        lambda ctx: [], deferred(_figures, "figure2"),
                        prepare=prepare_for(None)),
    "figure3": Artefact("figure3", "IN-9 test variants of one foreground", lambda ctx: [], deferred(_figures, "figure3"),
                        prepare=prepare_for("in9"), datasets=DATASETS["in9"]),
}


PAPER = Paper(
    name="cfaug",
    bench_rows=deferred(_bench, "cfaug_rows"),
    register=register,
    title="Chang et al.: counterfactual and factual data augmentation",
    default_seeds=len(SEEDS),
    switches=SWITCHES,
    prepare=prepare_for(None),
    job=deferred(_train, "cfaug_job"),
    artefacts=dict(sorted(ARTEFACTS.items(), key=lambda kv: (kv[1].kind != "table",
                                                             int(kv[0].removeprefix("table").removeprefix("figure"))))),
)
