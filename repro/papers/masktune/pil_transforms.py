"""Per-image transforms of MaskTune's file-backed datasets, PIL RGB image -> normalised float tensor
(specs/masktune.md §2.2-2.4, D-27).

"eval" serves val and test, "mask" the XGradCAM pass over the training images, "train" the ERM and finetune
epochs. CelebA's and Waterbirds' mask transforms equal their eval ones, a centre crop the saved mask is later
stretched over the whole image (§4.5, D-5); IN-9's is a plain resize, aligned with the image.
"""

from __future__ import annotations

from typing import Callable

import torch
from PIL import Image
from torch import Tensor
from torchvision import transforms as T


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
IN9 = ((0.4717, 0.4499, 0.3837), (0.2600, 0.2516, 0.2575))  # the code's IN-9 statistics (D-27)
NORMALISATION = {"celeba": IMAGENET, "waterbirds": IMAGENET, "in9": IN9}
EIGVAL = (0.2175, 0.0188, 0.0045)  # AlexNet PCA colour noise (§2.4)
EIGVEC = ((-0.5675, 0.7192, 0.4009),
          (-0.5808, -0.0045, -0.8140),
          (-0.5836, -0.6948, 0.4203))


class Lighting:
    """AlexNet PCA noise on a [0, 1] tensor (3, H, W): channel i += sum_j eigvec[i, j] * alpha_j * eigval_j,
    alpha ~ N(0, std^2) drawn from torch's global generator for each image."""

    def __init__(self, std: float = 0.05) -> None:
        self.std = std
        self.eigval = torch.tensor(EIGVAL)
        self.eigvec = torch.tensor(EIGVEC)

    def __call__(self, image: Tensor) -> Tensor:
        alpha = torch.randn(3) * self.std
        return image + (self.eigvec @ (alpha * self.eigval)).view(3, 1, 1)

    def __repr__(self) -> str:
        return f"Lighting(std={self.std})"


def normalisation(kind: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per RGB channel of a transform family: ImageNet for celeba / waterbirds, IN-9 for in9."""
    if kind not in NORMALISATION:
        raise ValueError(f"unknown transform family {kind!r}; expected one of {', '.join(NORMALISATION)}")
    return NORMALISATION[kind]


def pil_transforms(kind: str) -> dict[str, Callable[[Image.Image], Tensor]]:
    """The "train", "eval" and "mask" transforms of `kind` ("celeba", "waterbirds" or "in9"), each giving a
    (3, 224, 224) tensor."""
    mean, std = normalisation(kind)
    tensor, normalise = T.ToTensor(), T.Normalize(mean, std)
    if kind == "in9":
        train = [T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ColorJitter(0.1, 0.1, 0.1), tensor, Lighting()]
        return {"train": T.Compose([*train, normalise]),
                "eval": T.Compose([T.Resize(256), T.CenterCrop(224), tensor, normalise]),
                "mask": T.Compose([T.Resize((224, 224)), tensor, normalise])}
    if kind == "celeba":  # train crops the full 178x218 image; eval and mask see its central 178x178 square
        ratio, view = (1.0, 4 / 3), [T.CenterCrop(178), T.Resize((224, 224))]
    else:
        ratio, view = (0.75, 4 / 3), [T.Resize((256, 256)), T.CenterCrop(224)]
    crop = T.RandomResizedCrop(224, scale=(0.7, 1.0), ratio=ratio)
    return {"train": T.Compose([crop, T.RandomHorizontalFlip(), tensor, normalise]),
            "eval": T.Compose([*view, tensor, normalise]),
            "mask": T.Compose([*view, tensor, normalise])}
