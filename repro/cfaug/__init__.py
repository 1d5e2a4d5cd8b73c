"""Chang et al., counterfactual and factual data augmentation (specs/cfaug.md): data, generators, losses, training."""
