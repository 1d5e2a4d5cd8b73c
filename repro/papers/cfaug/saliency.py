"""Saliency AUPR of Tables 2, 5 and 7 (cfaug spec §7.3, C-20, C-21): DeepLiftShap attributions of the
ground-truth logit, scored per pixel by Σ_channels attr² against the foreground mask by average precision."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

RELU_MODES = ("functional", "modules")


class FunctionalReLU(nn.Module):
    """ReLU that is not an `nn.ReLU`: captum's DeepLift applies no rescale rule to it, only its gradient."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class _Logits(nn.Module):
    """Exposes a repro model's logits (its forward returns `(logits, extra)`) as captum expects."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)[0]


@contextmanager
def functional_body(model: nn.Module) -> Iterator[None]:
    """Within the block, the `nn.ReLU`s of every timm ResNetV2 body (`stages`) are `FunctionalReLU`s, as the
    authors' BiT computes them (C-20); the stem max-pool and the head ReLU stay modules. Restored on exit."""
    from timm.models.resnetv2 import ResNetV2

    bodies = [m.stages for m in model.modules() if isinstance(m, ResNetV2)]
    if not bodies:
        raise ValueError("relu='functional' needs a timm ResNetV2 body (bit_r50x1, bit_tiny); use relu='modules'")
    swapped = [(parent, name, child) for body in bodies for parent in body.modules()
               for name, child in parent.named_children() if type(child) is nn.ReLU]
    try:
        for parent, name, _ in swapped:
            setattr(parent, name, FunctionalReLU())
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode within the block; every module's own train/eval flag restored on exit."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def average_precision(scores: Tensor, mask: Tensor) -> float:
    """sklearn's average precision of per-pixel `scores` against the binary mask (> 0 = foreground)."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score((mask.flatten() > 0).cpu().numpy(), scores.flatten().double().cpu().numpy()))


def image_aps(model: nn.Module, images: Tensor, labels: Tensor, masks: Tensor, *, baselines: int = 20,
              batch: int = 64, chunk: int = 2, seed: int = 2020, relu: str = "functional") -> Tensor:
    """Per-image AP (float64 (N,), NaN where the mask is all 0 or all 1) of DeepLiftShap attributions for the
    label. Per evaluation batch of `batch` images, `baselines` images are drawn without replacement from the
    whole set (C-21) with a generator seeded `seed`; attributions run `chunk` images at a time.
    `images` (N,3,H,W) normalised, `labels` (N,), `masks` (N,[1,]H,W); batches go to the model's device."""
    from captum.attr import DeepLiftShap

    if relu not in RELU_MODES:
        raise ValueError(f"relu must be one of {', '.join(RELU_MODES)}, not {relu!r}")
    n = len(images)
    if n < 2:
        raise ValueError("DeepLiftShap needs at least 2 evaluation images to draw baselines from")
    masks = (masks.reshape(n, -1) > 0)
    valid = masks.any(1) & ~masks.all(1)
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    explainer = DeepLiftShap(_Logits(model))
    aps = torch.full((n,), float("nan"), dtype=torch.float64)
    body = functional_body(model) if relu == "functional" else nullcontext()
    with eval_mode(model), body, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Setting forward, backward hooks", UserWarning)  # captum, every call
        for start in range(0, n, batch):
            base = images[torch.randperm(n, generator=gen)[:baselines]].to(device)
            todo = torch.arange(start, min(start + batch, n))[valid[start:start + batch]]
            for part in todo.split(chunk) if len(todo) else ():  # split() of an empty tensor yields one
                attr = explainer.attribute(images[part].to(device), baselines=base, target=labels[part].to(device))
                scores = attr.detach().pow(2).sum(1).cpu()
                for i, s in zip(part.tolist(), scores):
                    aps[i] = average_precision(s, masks[i])
    return aps


def saliency_aupr(model: nn.Module, images: Tensor, labels: Tensor, masks: Tensor, *, baselines: int = 20,
                  batch: int = 64, chunk: int = 2, seed: int = 2020, relu: str = "functional") -> float:
    """Mean AP × 100 over the images with a non-trivial mask (`image_aps`); NaN when there is none."""
    aps = image_aps(model, images, labels, masks, baselines=baselines, batch=batch, chunk=chunk, seed=seed, relu=relu)
    return 100 * aps.nanmean().item()
