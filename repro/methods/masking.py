"""ROI masks: the outside set and the per-sample pixel shuffle outside the ROI (actdiff spec §4.2)."""

from __future__ import annotations

import torch
from torch import Tensor


def outside_mask(mask: Tensor) -> Tensor:
    """Pixels outside the ROI: every pixel where the mask is not exactly 1 (soft edges count as outside)."""
    return mask != 1


def shuffle_outside(x: Tensor, outside: Tensor, generator: torch.Generator) -> Tensor:
    """Permute, independently per sample, the values of `x` at the `outside` positions.

    Uniform random keys are drawn for every pixel, inside pixels get a key above all of them, and a
    stable sort then lists the outside positions in random order; they are written back into the
    outside positions in ascending order, so inside pixels stay in place.
    """
    b = x.shape[0]
    flat = x.reshape(b, -1)
    out_flat = outside.expand_as(x).reshape(b, -1)
    keys = torch.rand(flat.shape, generator=generator, device=x.device, dtype=torch.float32)
    keys = keys.masked_fill(~out_flat, 2.0)
    src = keys.argsort(dim=1, stable=True)
    dst = (~out_flat).to(torch.int8).argsort(dim=1, stable=True)
    shuffled = flat.clone()
    shuffled.scatter_(1, dst, flat.gather(1, src))
    return shuffled.reshape_as(x)
