"""Teacher annotations of the TAP paper (tap spec §4.1, §5): a teacher's input-gradient saliency, the
per-image percentile mask `get_mask`, random saliency for the "rnd" baseline, and mask overlap (Fig. 8)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

QUANTILE_LIMIT = 2 ** 24  # torch.quantile refuses larger inputs
TAU_MODES = ("percentile", "absolute")


def input_gradient_saliency(model: nn.Module, images: Tensor, transform: Callable[[Tensor], Tensor] | None,
                            batch: int = 64) -> Tensor:
    """S = sum_c |d/dx sum_k log_softmax(f(x))_k| per image, (N, H, W) float16 on the CPU (§5.2, §10).

    `images` are stored training images (e.g. uint8 (N, 1, H, W)); `transform` turns a batch into model
    inputs (normalised, 3 channels) and the gradient is taken with respect to those inputs, as the code
    does. The model runs in eval mode on its own device, batch by batch, without create_graph."""
    model.eval()
    device = next(model.parameters()).device
    prep = transform or (lambda t: t.float())
    out = []
    for i in range(0, len(images), batch):
        x = prep(images[i:i + batch].to(device)).detach().requires_grad_(True)
        total = torch.log_softmax(model(x)[0], dim=1).sum()
        (grad,) = torch.autograd.grad(total, x)
        out.append(grad.abs().sum(1).to(torch.float16).cpu())
    return torch.cat(out) if out else torch.empty(0, *images.shape[2:], dtype=torch.float16)


def percentile_mask(saliency: Tensor, tau: float, tau_mode: str = "percentile") -> Tensor:
    """get_mask(E, 'larger', tau) on channel-summed saliency S (N, H, W): True where S <= the per-image
    tau-quantile (linear interpolation, ties included), i.e. the tau-fraction of least salient pixels (§4.1).

    `tau_mode="absolute"` is the paper's Eq. 14 (D-4): S min-max normalised to [0, 1] per image, True where
    S < tau. Vectorised over images, in chunks that torch.quantile accepts."""
    if tau_mode not in TAU_MODES:
        raise ValueError(f"tau_mode must be one of {', '.join(TAU_MODES)}, not {tau_mode!r}")
    n, h, w = saliency.shape
    flat = saliency.reshape(n, h * w)
    chunk = max(1, QUANTILE_LIMIT // max(1, h * w))
    parts = []
    for i in range(0, n, chunk):
        s = flat[i:i + chunk].float()
        if tau_mode == "percentile":
            q = torch.quantile(s, tau, dim=1, keepdim=True)
            parts.append(s <= q)
        else:
            lo, hi = s.amin(1, keepdim=True), s.amax(1, keepdim=True)
            parts.append((s - lo) / (hi - lo).clamp_min(torch.finfo(s.dtype).tiny) < tau)
    return torch.cat(parts).reshape(n, h, w) if parts else torch.zeros(0, h, w, dtype=torch.bool)


def random_saliency(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """E ~ N(0, 1) of `shape`, the code's `random_gradients` (§5.5); get_mask of it is a random tau-fraction."""
    return torch.randn(shape, generator=generator, device=generator.device)


def per_image_overlap(pred: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
    """Per image (first axis) precision |P & GT| / |P| and recall |P & GT| / |GT|; NaN where the
    denominator is 0 (an empty mask or an image without a tag)."""
    p, g = pred.reshape(len(pred), -1).bool(), gt.reshape(len(gt), -1).bool()
    hit = (p & g).sum(1).double()
    return hit / p.sum(1).double(), hit / g.sum(1).double()


def overlap(pred: Tensor, gt: Tensor) -> tuple[float, float]:
    """(precision, recall) of masks `pred` against `gt`, per image then averaged over the images where each
    is defined (§5, Figure 8 computation)."""
    precision, recall = per_image_overlap(pred, gt)
    return float(precision.nanmean()), float(recall.nanmean())
