"""Taghanaki et al., MaskTune (specs/masktune.md). Artefacts declared; not built yet."""

from repro.papers import Paper, stub_artefacts

PAPER = Paper(
    name="masktune",
    title="Taghanaki et al.: MaskTune",
    default_seeds=3,
    artefacts=stub_artefacts({
        "table1": "CelebA (blond hair / male): worst-group and average accuracy",
        "table2": "Waterbirds: worst-group and average accuracy",
        "table3": "Background Challenge (IN-9): accuracy per test variant",
        "table4": "Selective classification: CIFAR-10, SVHN, dogs vs cats at target coverages",
        "figure2": "Biased MNIST: ERM, RandMask, MaskTune on original and biased test sets, with xGradCAM",
        "figure3": "xGradCAM panels on CelebA and Waterbirds",
    }),
)
