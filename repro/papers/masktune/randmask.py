"""RandMask (masktune spec §5.6): one random square cut out of every training image, drawn afresh per access."""

from __future__ import annotations

import torch
from torch import Tensor

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
