"""ROI masks: the outside set and the per-sample pixel shuffle outside the ROI (actdiff spec §4.2)."""

from __future__ import annotations

import torch
from torch import Tensor

from repro.methods import StepContext


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


def shuffled(ctx: StepContext) -> Tensor:
    """The step's x with its pixels outside the ROI permuted per sample (drawn once per step, from each member's
    generator for its rows; the actdiff and reconstruction penalties share it)."""
    if "shuffled" not in ctx.cache:
        x, out = ctx.x.detach().chunk(ctx.members), ctx.outside.chunk(ctx.members)
        ctx.cache["shuffled"] = torch.cat([shuffle_outside(a, o, g) for a, o, g in zip(x, out, ctx.generators)])
    return ctx.cache["shuffled"]
