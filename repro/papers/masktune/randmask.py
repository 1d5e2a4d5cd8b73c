"""RandMask (masktune spec §5.6): one random square cut out of every training image, drawn afresh per access; the
finetune stage of MaskTune otherwise (the "randmask" method)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from repro.data.image_sets import ImageSplit
from repro.methods import register_method
from repro.papers.masktune.train import FinetuneJob, cross_entropy

MIN_SIDE, MAX_SIDE = 2, 14


def cutout(x: Tensor, gen: torch.Generator) -> Tensor:
    """x (B, C, H, W) with rows [y - L//2, y + L//2) x cols [x - L//2, x + L//2) zeroed on every channel,
    clipped to the image; centre uniform over the pixels, L uniform in {2..14}, per image."""
    b, _, h, w = x.shape
    dev = gen.device
    cy = torch.randint(0, h, (b,), generator=gen, device=dev).to(x.device)
    cx = torch.randint(0, w, (b,), generator=gen, device=dev).to(x.device)
    half = (torch.randint(MIN_SIDE, MAX_SIDE + 1, (b,), generator=gen, device=dev) // 2).to(x.device)
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    in_r = (rows >= (cy - half)[:, None]) & (rows < (cy + half)[:, None])
    in_c = (cols >= (cx - half)[:, None]) & (cols < (cx + half)[:, None])
    hole = in_r[:, :, None] & in_c[:, None, :]
    return x * (~hole)[:, None].to(x.dtype)


def cutout_cross_entropy(model: nn.Module, x: Tensor, y: Tensor, gen: torch.Generator
                         ) -> tuple[Tensor, dict[str, Tensor]]:
    """The CE of the batch with a square cut out of each image (`cutout`, drawn from `gen`)."""
    return cross_entropy(model, cutout(x, gen), y, gen)


@register_method("randmask")
class RandMaskJob(FinetuneJob):
    """RandMask's finetune rounds: the unmasked training images, cut out batch by batch."""

    objective = staticmethod(cutout_cross_entropy)

    def round_split(self, epoch: int) -> tuple[ImageSplit, dict[str, Any]]:
        return self.train, {}
