"""Sal: GradMask's saliency regulariser on the originals (spec §5.5, C-2, C-3), weighted by lambda = `method.sal`;
its forward of the originals gives their logits (double backprop, fp32). Registered as "cfaug.sal"."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from repro.methods import register_method
from repro.papers.cfaug.settings import SAL_NORMS, SAL_TARGETS
from repro.papers.cfaug.terms import Regulariser, TermBatch


def sal_penalty(model: nn.Module, x: Tensor, y: Tensor, mask: Tensor, has_bbox: Tensor, *,
                target: str = "batch_labels", norm: str = "mean_all") -> tuple[Tensor, Tensor]:
    """GradMask "Sal" on the B originals (§5.5): (logits of x from the same forward, unweighted penalty).

    g = dT/dx with create_graph=True (double backprop). `target` (C-2): `batch_labels` (code)
    T = sum_i sum_j z_i[y_j]; `per_sample` (paper) T = sum_i z_i[y_i]. `norm` (C-3) over the has_bbox images:
    `mean_all` (code) mean of (g*(1-m))^2 over n*3*H*W; `bg_area` (paper) per image
    sum (g^2 (1-m)) / sum (1-m), both sums over the 3*H*W input entries (0 for an image with no background),
    then the mean over images. No has_bbox image -> penalty 0.
    """
    if target not in SAL_TARGETS or norm not in SAL_NORMS:
        raise ValueError(f"sal target must be in {SAL_TARGETS} and norm in {SAL_NORMS}; got {target!r}, {norm!r}")
    xg = x.detach().requires_grad_(True)
    logits = model(xg)[0]
    if not bool(has_bbox.any()):
        return logits, logits.new_zeros((), dtype=torch.float32)
    z = logits.float()
    if target == "per_sample":
        t = z.gather(1, y[:, None]).sum()
    else:
        t = (z * torch.bincount(y, minlength=z.shape[1]).to(z.dtype)[None, :]).sum()
    (g,) = torch.autograd.grad(t, xg, create_graph=True)
    g, bg = g[has_bbox].float(), (1 - mask[has_bbox]).float().expand_as(g[has_bbox])
    sq = (g * bg) ** 2
    if norm == "mean_all":
        return logits, sq.mean()
    return logits, (sq.flatten(1).sum(1) / bg.flatten(1).sum(1).clamp(min=1)).mean()


@register_method("cfaug.sal")
class Saliency(Regulariser):
    """lambda * `sal_penalty` (target C-2, norm C-3), part "sal"."""

    part = "sal"
    own_forward = True

    def forward(self, tb: TermBatch) -> Tensor:
        m = self.method
        logits, tb.kept["sal"] = sal_penalty(tb.model, tb.x, tb.y, tb.mask, tb.has_bbox, target=m.sal_target,
                                             norm=m.sal_norm)
        return logits

    def __call__(self, tb: TermBatch) -> Tensor:
        return self.method.sal * tb.kept["sal"]
