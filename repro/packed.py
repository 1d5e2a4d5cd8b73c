"""Several runs of one architecture trained as one vectorised program (issue: speed and scale).

`Pack` stacks the members' parameters and buffers (`torch.func.stack_module_state`) and runs them with
`vmap` over `functional_call`: one kernel per layer for all members instead of one per member. Its input is
the members' batches concatenated along the batch dimension (member m owns rows [m*B, (m+1)*B)) and its
outputs are concatenated the same way, so objectives and metrics see an ordinary model (`repro.methods`
reduces every term per member). Ordinary autograd runs through `vmap`, double backward included (gradmask,
RRR, RBR differentiate input gradients); BatchNorm updates each member's running statistics.
A pack equals one-by-one training up to rounding: its batched convolutions round differently (1e-17 in
float64), which can pick another of exactly tied max-pool inputs (binary images) for the gradient.

Not packed (trained one by one instead): models with dropout, whose random masks could not equal the
one-by-one runs' draws, and RBR's code-order influence (D-9), which differentiates through the input tensor
itself as the first convolution saved it, where a pack sees a reshaped view.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn


def packable(model: nn.Module, objective: Any = None) -> str | None:
    """None when runs of `model` with `objective` can be packed, else the reason they train one by one."""
    if any(isinstance(m, nn.modules.dropout._DropoutNd) for m in model.modules()):
        return "dropout: its random masks would differ from one-by-one training"
    return getattr(objective, "unpackable", None)


class Pack(nn.Module):
    """M models of one architecture as one module over concatenated member batches."""

    def __init__(self, models: list[nn.Module]):
        from torch.func import stack_module_state

        super().__init__()
        params, buffers = stack_module_state(models)
        self.members = len(models)
        self.names = list(params)
        self.buffer_names = list(buffers)
        self.stacked = nn.ParameterList([nn.Parameter(p) for p in params.values()])
        for i, b in enumerate(buffers.values()):
            self.register_buffer(f"buffer{i}", b)
        self._base = [copy.deepcopy(models[0]).to("meta")]  # a list: not a submodule
        self.record = False
        self.activations: list[Tensor] = []

    @property
    def base(self) -> nn.Module:
        return self._base[0]

    def train(self, mode: bool = True) -> Pack:
        self.base.train(mode)
        return super().train(mode)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        from torch.func import functional_call, vmap

        base, record, has_recon = self.base, self.record, []

        def member(params: dict[str, Tensor], buffers: dict[str, Tensor], xm: Tensor):
            base.record = record
            logits, recon = functional_call(base, (params, buffers), (xm,))
            has_recon.append(recon is not None)
            acts = base.activations if record else []
            return logits, (recon if recon is not None else logits.new_zeros(())), acts

        params = dict(zip(self.names, self.stacked))
        buffers = {n: getattr(self, f"buffer{i}") for i, n in enumerate(self.buffer_names)}
        xs = x.reshape(self.members, -1, *x.shape[1:])
        logits, recon, acts = vmap(member, randomness="error")(params, buffers, xs)
        base.activations = []
        self.activations = [a.flatten(0, 1) for a in acts] if record else []
        return logits.flatten(0, 1), recon.flatten(0, 1) if has_recon[0] else None

    def member_state(self, m: int) -> dict[str, Tensor]:
        """Member m's `state_dict`, with the keys of the one-by-one model's."""
        out = {n: p[m].detach().clone() for n, p in zip(self.names, self.stacked)}
        out |= {n: getattr(self, f"buffer{i}")[m].clone() for i, n in enumerate(self.buffer_names)}
        return out


def slice_optimizer_state(state: dict[str, Any], m: int, members: int) -> dict[str, Any]:
    """Member m's optimiser `state_dict` from a packed one: stacked tensors are indexed, shared ones (Adam's
    step count) kept, so a member resumes alone or in any pack."""
    def pick(v: Any) -> Any:
        return v[m].clone() if isinstance(v, Tensor) and v.dim() > 0 and v.shape[0] == members else v

    return {"state": {i: {k: pick(v) for k, v in s.items()} for i, s in state["state"].items()},
            "param_groups": copy.deepcopy(state["param_groups"])}


def stack_optimizer_state(states: list[dict[str, Any]]) -> dict[str, Any]:
    """A packed optimiser `state_dict` from the members' (the inverse of `slice_optimizer_state`)."""
    first = states[0]

    def stack(key: int, k: str) -> Any:
        v = first["state"][key][k]
        if isinstance(v, Tensor) and v.dim() > 0:
            return torch.stack([s["state"][key][k] for s in states])
        return v

    return {"state": {i: {k: stack(i, k) for k in s} for i, s in first["state"].items()},
            "param_groups": copy.deepcopy(first["param_groups"])}
