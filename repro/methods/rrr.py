"""RRR: penalise the input gradient of the summed log-probabilities on the annotated region, as the TAP
authors' code does (tap spec §4.3, D-5). `ctx.mask` is 1 on the region to penalise (see `repro.methods.tap`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.methods import Penalty, StepContext, register_penalty
from repro.methods.tap import penalty_mask


def input_gradients(model: nn.Module, x: Tensor) -> Tensor:
    """G = d/dx sum_n sum_k log_softmax(f(x_n))_k, channel-summed and signed, (N, 1, H, W), differentiable.

    As in the code (§4.3, §10): a second forward in eval mode (BN running statistics, no dropout), then the
    model's previous mode is restored; `x` is made to require grad in place, after the CE forward (D-9).
    """
    x.requires_grad_(True)
    was_training = model.training
    model.eval()
    logits = model(x)[0]
    model.train(was_training)
    (g,) = torch.autograd.grad(F.log_softmax(logits, 1).sum(), x, create_graph=True)
    return g.sum(1, keepdim=True)


@register_penalty("rrr")
class RrrPenalty(Penalty):
    """mean_n sum_ij (M~ * G)^2 with M~ = M * HW / sum(M) per sample (the rescale sits inside the square);
    M = `ctx.mask`, 1 on the region to penalise."""

    def __call__(self, ctx: StepContext) -> Tensor:
        g = input_gradients(ctx.model, ctx.x)
        m = penalty_mask(ctx.mask)
        area = m.flatten(1).sum(1).clamp_min(1)  # an empty mask stays empty (the code never sees one)
        scaled = m * (m.shape[-2] * m.shape[-1] / area).view(-1, 1, 1, 1)
        return (scaled * g).square().flatten(1).sum(1)
