"""Taghanaki et al., "MaskTune: Mitigating Spurious Correlations by Forcing to Explore" (NeurIPS 2022;

The artefact registry; settings and plans are in `plans` (torch-free at import).
"""

from __future__ import annotations

from functools import partial
from types import ModuleType

from repro.papers import Artefact, Paper, deferred
from repro.papers.masktune.plans import DATASETS_OF, SEEDS, SWITCHES, plan, preparer



# The modules below import pandas or torch: each is imported when one of its functions is first called.
def _report() -> ModuleType:
    from repro.papers.masktune import report

    return report


def _bench() -> ModuleType:
    from repro.papers.masktune import bench

    return bench


def _train() -> ModuleType:
    from repro.papers.masktune import train

    return train


def register() -> None:
    """Register MaskTune's models and methods (erm, masktune: `train`; randmask) into the shared registries
    (imports torch)."""
    from repro.papers.masktune import models, randmask, train  # noqa: F401


# `repro data check` names of what each dataset reads under the data root
CHECK_NAMES = {"biased_mnist": ("mnist",), "celeba": ("celeba",), "waterbirds": ("waterbirds_corrected",),
               "in9l": ("in9l", "bg_challenge_test"), "cifar10": ("cifar10",), "svhn": ("svhn",),
               "cats_dogs": ("dogs_vs_cats",)}


def _artefact(name: str, title: str, methods: tuple[str, ...], selective: bool = False) -> Artefact:
    several = len(DATASETS_OF[name]) > 1  # a missing one is skipped with a note; plan() needs at least one
    return Artefact(name, title, partial(plan, datasets=DATASETS_OF[name], methods=methods, selective=selective),
                    deferred(_report, name), prepare=preparer(*DATASETS_OF[name], skip_missing=several),
                    datasets=tuple(n for d in DATASETS_OF[name] for n in CHECK_NAMES[d]))


ARTEFACTS = {
    "table1": _artefact("table1", "CelebA (blond hair, male): worst-group and average accuracy", ("erm", "masktune")),
    "table2": _artefact("table2", "Waterbirds (corrected): worst-group and average accuracy", ("erm", "masktune")),
    "table3": _artefact("table3", "Background Challenge (IN-9): accuracy per test variant", ("erm", "masktune")),
    "table4": _artefact("table4", "Selective classification: CIFAR-10, SVHN, Cats vs Dogs at 90/95/100% coverage",
                        ("erm", "masktune"), selective=True),
    "figure2": _artefact("figure2", "Biased MNIST: ERM, RandMask, MaskTune on the original and biased test sets, "
                         "with XGradCAM", ("erm", "randmask", "masktune")),
    "figure3": _artefact("figure3", "XGradCAM of ERM and MaskTune on CelebA and Waterbirds", ("erm", "masktune")),
}


PAPER = Paper(
    name="masktune",
    bench_cases=deferred(_bench, "bench_cases"),
    register=register,
    title="Taghanaki et al.: MaskTune",
    default_seeds=SEEDS,
    switches=SWITCHES,
    prepare=preparer(*sorted({d for v in DATASETS_OF.values() for d in v}), skip_missing=True),
    job=deferred(_train, "masktune_job"),
    artefacts=dict(sorted(ARTEFACTS.items(), key=lambda kv: (kv[1].kind != "table", kv[0]))),
)
