"""RRR: penalise the input gradient of the model's summed outputs on the annotated region (tap spec §4.3):
as the TAP authors' code does by default, or as the paper's Eq. 4 writes it (D-5 `output`). `ctx.mask` is 1 on
the region to penalise (see `repro.papers.tap.penalty_tap`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.methods import Penalty, StepContext, register_penalty
from repro.papers.tap.penalty_tap import penalty_mask

OUTPUTS = ("log_softmax", "logits")


def input_gradients(model: nn.Module, x: Tensor, output: str = "log_softmax") -> Tensor:
    """G = d/dx sum_n sum_k out(f(x_n))_k, signed, (N, C, H, W), differentiable; `output` = "log_softmax"
    (code) or "logits" (paper Eq. 4: the raw outputs f_k).

    As in the code (§4.3, §10): a second forward in eval mode (BN running statistics, no dropout), then the
    model's previous mode is restored; `x` is made to require grad in place, after the CE forward (D-9).
    """
    x.requires_grad_(True)
    was_training = model.training
    model.eval()
    logits = model(x)[0]
    model.train(was_training)
    out = F.log_softmax(logits, 1) if output == "log_softmax" else logits
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return g


@register_penalty("rrr")
class RrrPenalty(Penalty):
    """`output="log_softmax"` (code, D-5 default): mean_n sum_ij (M~ * sum_c G_c)^2 of the log-softmax
    gradient, with M~ = M * HW / sum(M) per sample (the rescale sits inside the square).
    `output="logits"` (paper Eq. 4): mean_n sum_cij (M * G_c)^2 of the logits' gradient with the plain binary
    mask, no normalisation; the square is taken per input channel (Eq. 4 is written for one channel).
    M = `ctx.mask`, 1 on the region to penalise."""

    def __init__(self, output: str = "log_softmax"):
        if output not in OUTPUTS:
            raise ValueError(f"rrr output must be one of {', '.join(OUTPUTS)}, not {output!r}")
        self.output = output

    def __call__(self, ctx: StepContext) -> Tensor:
        g = input_gradients(ctx.model, ctx.x, self.output)
        m = penalty_mask(ctx.mask)
        if self.output == "logits":
            return (m * g).square().flatten(1).sum(1)
        area = m.flatten(1).sum(1).clamp_min(1)  # an empty mask stays empty (the code never sees one)
        scaled = m * (m.shape[-2] * m.shape[-1] / area).view(-1, 1, 1, 1)
        return (scaled * g.sum(1, keepdim=True)).square().flatten(1).sum(1)
