"""RBR: input gradient times the authors' "influence function" on the annotated region (tap spec §4.4, D-9).
`ctx.mask` is 1 on the region to penalise (see `repro.papers.tap.penalty_tap`)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
from torch import Tensor, nn

from repro.methods import Constant, Penalty, StepContext, member_ce, register_penalty
from repro.papers.tap.penalty_rrr import input_gradients
from repro.papers.tap.norms import composite_batch_norm
from repro.papers.tap.penalty_tap import penalty_mask

INFLUENCES = ("code", "full")


def influence(ce: Tensor, model: nn.Module, x: Tensor) -> Tensor:
    """IF = d/dx sum over every element of dCE/dtheta (no inverse Hessian), channel-summed, (N, 1, H, W).

    Only the paths that exist in `ce`'s graph reach `x`: when `x` required grad only after the CE forward
    (code order, D-9) that is the first convolution's saved input, with its upstream gradient constant."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(ce, params, create_graph=True, allow_unused=True)
    total = sum(g.sum() for g in grads if g is not None)
    (d,) = torch.autograd.grad(total, x, create_graph=True)
    return d.sum(1, keepdim=True)


@register_penalty("rbr")
class RbrPenalty(Penalty):
    """sum_n sum_ij (M * G * IF)^2, summed over the batch; M = `ctx.mask` (binary, unscaled), 1 on the
    region to penalise (§4.4).

    `influence="code"` (default, D-9): x requires grad only after the training forward, as in the code;
    `"full"`: x requires grad before it, so IF differentiates through every layer. IF comes from the
    training-step CE; `class_weight` must match the objective's CE weights (PNEU, D-13)."""

    reduce = "sum"

    def __init__(self, influence: str = "code", class_weight: list[float] | None = None):
        if influence not in INFLUENCES:
            raise ValueError(f"rbr influence must be one of {', '.join(INFLUENCES)}, not {influence!r}")
        self.full = influence == "full"
        if not self.full:  # D-9: IF reaches x only through the first convolution's saved input, x itself
            self.unpackable = "RBR's code-order influence (D-9) needs the input tensor itself in the graph"
        self.class_weight = None if class_weight is None else torch.tensor(class_weight, dtype=torch.float32)
        self._weight = None if class_weight is None else Constant(self.class_weight)

    def around_step(self) -> AbstractContextManager[None]:
        """The full IF's backward differentiates batch norm three times: `composite_batch_norm` (BN models)."""
        return composite_batch_norm() if self.full else nullcontext()

    def prepare(self, ctx: StepContext) -> None:
        ctx.x.requires_grad_(self.full)  # in place, before the objective's forward on this tensor

    def __call__(self, ctx: StepContext) -> Tensor:
        g = input_gradients(ctx.model, ctx.x).sum(1, keepdim=True)
        weight = None if self._weight is None else self._weight.on(ctx.logits.device)
        ce = member_ce(ctx, weight).sum()  # each member's CE: its parameters' gradients are its own
        return (penalty_mask(ctx.mask) * g * influence(ce, ctx.model, ctx.x)).square().flatten(1).sum(1)
