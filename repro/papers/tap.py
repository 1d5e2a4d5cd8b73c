"""Zhang et al., Targeted Activation Penalties vs RRR and RBR (specs/tap.md). Artefacts declared; not built yet."""

from repro.papers import Paper, stub_artefacts

PAPER = Paper(
    name="tap",
    title="Zhang et al.: targeted activation penalties (TAP) vs RRR and RBR",
    default_seeds=5,
    artefacts=stub_artefacts({
        "table1": "Training speed (it/s) and memory at batch 16, 224 px: No XS, RRR, RBR, TAP x VGG-16, ResNet-18, DenseNet-121",
        "figure1": "Integrated gradients and activation maps of a contaminated image",
        "figure4": "Contaminated examples: decoy MNIST, PNEU, KNEE",
        "figure5": "Decoy MNIST: accuracy and Delta on the correlated and permuted test sets",
        "figure6": "PNEU: F1 and Delta per architecture and method",
        "figure7": "KNEE: accuracy and Delta per architecture and method",
        "figure8": "Teacher-mask precision and recall versus tau",
        "figure9": "TAP with teacher and random masks",
    }),
)
