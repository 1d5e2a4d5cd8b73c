"""Chang et al., counterfactual and factual data augmentation (specs/cfaug.md). Artefacts declared; not built yet."""

from repro.papers import Paper, stub_artefacts

PAPER = Paper(
    name="cfaug",
    title="Chang et al.: counterfactual and factual data augmentation",
    default_seeds=3,
    artefacts=stub_artefacts({
        "table1": "IN-9 accuracy on four test sets",
        "table2": "IN-9 saliency AUPR (DeepLiftShap) and accuracy",
        "table3": "IN-9 next-class probability shift",
        "table4": "Waterbirds accuracy (Original and Flip)",
        "table5": "Waterbirds saliency AUPR and accuracy",
        "table6": "CCT macro AUC (Cis and Trans)",
        "table7": "CCT saliency AUPR and AUC",
        "table8": "Training hyperparameters",
        "figure1": "A counterfactual image lowers p(target), a factual one raises it",
        "figure2": "Examples of every CF and F generator",
        "figure3": "IN-9 test variants of one foreground",
        "figure4": "IN-9 scatter: saliency AUPR vs accuracy with R^2",
        "figure5": "IN-9 accuracy vs training data ratio",
        "figure6": "IN-9 Mixed-Next examples, CF+F+Sal right and Orig wrong",
        "figure7": "Waterbirds scatter: AUPR vs accuracy with R^2",
        "figure8": "Waterbirds Flip examples",
        "figure9": "CCT Trans examples",
        "figure10": "CCT scatter: AUPR vs AUC with R^2",
        "figure11": "Random IN-9 Mixed-Next examples with top-5 predictions",
        "figure12": "Random CCT Trans examples with top-5 predictions",
    }),
)
