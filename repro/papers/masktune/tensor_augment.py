"""Batched train augmentation of uint8 (B, H, W, 3) images on their own device (specs/masktune.md §2.5-2.7, §9).

Each kind reproduces the code's torchvision pipeline with per-sample parameters drawn from one generator:
- "mnist": none (ToTensor);
- "cifar", "catsdogs": RandomHorizontalFlip(0.5) -> RandomAffine(15, translate=(0.1, 0.1)), nearest, fill 0;
- "svhn": RandomCrop(32, padding=4), zero padding.

Affine convention (torchvision.transforms.functional.affine's, tensor path): angle ~ U[-15, 15] degrees,
positive = clockwise on screen (F.affine's sign, opposite to F.rotate's; the draw is symmetric anyway);
tx = round(U[-0.1 W, 0.1 W]), ty = round(U[-0.1 H, 0.1 H]) integer pixels (round half to even, as Python's
round), positive = right / down. Output pixel p (centred coordinates) takes the input pixel nearest to
rotate(p - t, -angle), zero outside. This is exactly F.affine for integer shifts at angle 0 (tensor and PIL
paths); with rotation it can differ from the tensor path on rare half-way pixels (float order) and from the
PIL path (the code's, floor at pixel centres) on pixels at the rounding boundary.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

DEGREES = 15.0
TRANSLATE = 0.1
FLIP_P = 0.5
CROP_PADDING = 4


def to_float(x: Tensor) -> Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [0, 1], as ToTensor."""
    return x.permute(0, 3, 1, 2).float().div(255)


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device: torch.device) -> Tensor:
    return (torch.rand(n, generator=gen, device=gen.device) * (high - low) + low).to(device)


def affine_params(n: int, height: int, width: int, gen: torch.Generator,
                  device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-sample (flip bool, angle degrees, tx, ty integer pixels) of flip -> RandomAffine(15, (0.1, 0.1))."""
    flip = _uniform(n, 0, 1, gen, device) < FLIP_P
    angle = _uniform(n, -DEGREES, DEGREES, gen, device)
    max_dx, max_dy = TRANSLATE * width, TRANSLATE * height
    tx = _uniform(n, -max_dx, max_dx, gen, device).round()
    ty = _uniform(n, -max_dy, max_dy, gen, device).round()
    return flip, angle, tx, ty


def hflip(x: Tensor, flip: Tensor) -> Tensor:
    """(B, C, H, W) with the samples where `flip` is true mirrored left-right."""
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def affine_nearest(x: Tensor, angle: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    """(B, C, H, W) float rotated by `angle` degrees about the centre and shifted by (tx, ty) pixels, nearest,
    fill 0: torchvision's inverse matrix, rescaled to affine_grid's normalised coordinates."""
    b, _, h, w = x.shape
    rad = angle.float() * (math.pi / 180)
    cos, sin = rad.cos(), rad.sin()
    tx, ty = tx.float(), ty.float()
    theta = torch.stack([
        torch.stack([cos, sin * (h / w), (-cos * tx - sin * ty) * (2 / w)], 1),
        torch.stack([-sin * (w / h), cos, (sin * tx - cos * ty) * (2 / h)], 1),
    ], 1)
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def crop_padded(x: Tensor, top: Tensor, left: Tensor, padding: int = CROP_PADDING) -> Tensor:
    """(B, H, W, C): zero-pad by `padding`, then the H x W window at (top, left) of the padded image, per sample."""
    b, h, w, _ = x.shape
    padded = F.pad(x, (0, 0, padding, padding, padding, padding))
    rows = (top.view(-1, 1) + torch.arange(h, device=x.device)).view(b, h, 1)
    cols = (left.view(-1, 1) + torch.arange(w, device=x.device)).view(b, 1, w)
    return padded[torch.arange(b, device=x.device).view(b, 1, 1), rows, cols]


def augment(kind: str, x: Tensor, gen: torch.Generator) -> Tensor:
    """The train augmentation of `kind` on uint8 (B, H, W, 3): float (B, 3, H, W) in [0, 1]."""
    b, h, w, _ = x.shape
    if kind == "mnist":
        return to_float(x)
    if kind in ("cifar", "catsdogs"):
        flip, angle, tx, ty = affine_params(b, h, w, gen, x.device)
        return affine_nearest(hflip(to_float(x), flip), angle, tx, ty)
    if kind == "svhn":
        offsets = torch.randint(0, 2 * CROP_PADDING + 1, (2, b), generator=gen, device=gen.device).to(x.device)
        return to_float(crop_padded(x, offsets[0], offsets[1]))
    raise ValueError(f"unknown augmentation kind {kind!r}; known: mnist, cifar, catsdogs, svhn")
