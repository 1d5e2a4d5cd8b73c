"""TAP: penalise the targeted activations inside the downscaled annotation mask (tap spec §4.2).

Mask convention of the TAP-paper penalties (tap, rrr, rbr): `ctx.mask` is the spec's binary penalty mask
(§4.1), 1 on the region to penalise (the spurious tag), shape (N, 1 or C, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from repro.methods import Penalty, StepContext, register_penalty


def penalty_mask(mask: Tensor) -> Tensor:
    """The (N, 1, H, W) float penalty mask: 1 where any channel of `mask` marks the region to penalise."""
    return mask.amax(1, keepdim=True).float()


def chained_masks(mask: Tensor, sizes: list[tuple[int, int]]) -> list[Tensor]:
    """Code schedule (D-2 default): each layer's mask from the previous one by maxpool 3/1/1 then avgpool
    k = W_prev // W_l (only if k > 1), then a nearest resize by W_l*k/W_prev if that is below 1."""
    out = []
    for size in sizes:
        w_prev, w = mask.shape[-1], size[1]
        k = w_prev // w
        if k == 0:
            raise ValueError(f"TAP mask {tuple(mask.shape[-2:])} is smaller than the activation {size}")
        if k > 1:
            mask = F.avg_pool2d(F.max_pool2d(mask, 3, 1, 1), k)
        if w * k < w_prev:
            mask = F.interpolate(mask, scale_factor=w * k / w_prev, mode="nearest")
        if tuple(mask.shape[-2:]) != size:
            raise ValueError(f"TAP mask schedule reached {tuple(mask.shape[-2:])}, not the activation {size}")
        out.append(mask)
    return out


def direct_masks(mask: Tensor, sizes: list[tuple[int, int]]) -> list[Tensor]:
    """Paper Eq. 7 (D-2 option): AdaptiveAvgPool(MaxPool_{3,s1}(M)) from the input mask for every layer."""
    dilated = F.max_pool2d(mask, 3, 1, 1)
    return [F.adaptive_avg_pool2d(dilated, size) for size in sizes]


DOWNSCALE = {"chained": chained_masks, "direct": direct_masks}
NORMS = {"squared": torch.square, "l1": torch.abs}  # summed over positions afterwards


@register_penalty("tap")
class TapPenalty(Penalty):
    """mean_n (1/L) sum_l ||D(M, l) * sum_c A^l_c||, the activations from the train-mode CE forward.

    `norm="squared"` (code, D-1): squared Frobenius norm; `"l1"` (paper Eq. 8): sum of absolute values.
    `downscale="chained"` (code, D-2) or `"direct"` (paper Eq. 7). `ctx.mask` is 1 on the region to penalise.
    """

    needs_activations = True

    def __init__(self, norm: str = "squared", downscale: str = "chained"):
        self.norm = NORMS[norm]
        self.downscale = DOWNSCALE[downscale]

    def __call__(self, ctx: StepContext) -> Tensor:
        acts = ctx.activations
        masks = self.downscale(penalty_mask(ctx.mask).to(acts[0].dtype), [tuple(a.shape[-2:]) for a in acts])
        per_layer = []
        for m, a in zip(masks, acts):
            t = m * a.sum(1, keepdim=True)  # channel sum, no extra ReLU (code)
            per_layer.append(self.norm(t).flatten(1).sum(1))
        return torch.stack(per_layer).mean(0)  # sum over layers / L, per sample (the batch mean: `reduce`)
