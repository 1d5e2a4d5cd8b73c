"""Counterfactual (CF) and factual (F) image generators of cfaug (spec §5.3, §5.4; C-5, C-6, C-13, C-14).

Pure tensor functions on normalised images x (K,3,H,W) in [-1, 1] and fg masks (K,1,H,W) in {0,1}, on any
device. Randomness comes only from the `torch.Generator` argument; numbers are drawn on the generator's device
and moved to x's, so a CPU generator also drives CUDA tensors. A generator returns the whole augmented image:
CF = keep*x + (1-keep)*xhat with keep = 1 - Rect(m); F = m*x + (1-m)*xhat.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CF_INFILLS = ("grey", "random", "shuffle", "tile", "cagan")
F_INFILLS = ("random", "shuffle", "mrand", "fgsm")
SHUFFLE_MODES = ("batch_all", "region")


def _rand(shape: tuple[int, ...], gen: torch.Generator, like: Tensor) -> Tensor:
    return torch.rand(shape, generator=gen, device=gen.device).to(device=like.device, dtype=like.dtype)


def _randn(shape: tuple[int, ...], gen: torch.Generator, like: Tensor) -> Tensor:
    return torch.randn(shape, generator=gen, device=gen.device).to(device=like.device, dtype=like.dtype)


def _span(flags: Tensor) -> Tensor:
    """Fill every position between the first and the last True of the last dim (all False stays all False)."""
    f = flags.to(torch.uint8)
    return (f.cummax(-1).values & f.flip(-1).cummax(-1).values.flip(-1)).bool()


def rect(mask: Tensor) -> Tensor:
    """Filled bounding rectangle of each mask (..., H, W), same shape and dtype; an empty mask stays empty."""
    fg = mask > 0
    rows = _span(fg.any(-1))
    cols = _span(fg.any(-2))
    return (rows[..., :, None] & cols[..., None, :]).to(mask.dtype)


def grey_fill(x: Tensor) -> Tensor:
    """Grey (code `mean`): xhat = 0, mid-grey in normalised units."""
    return torch.zeros_like(x)


def random_fill(x: Tensor, gen: torch.Generator) -> Tensor:
    """One U(0,1) colour per image and channel plus per-pixel N(0, 0.2^2) noise, clamped to [0,1], normalised."""
    b, c, h, w = x.shape
    v = _rand((b, c, 1, 1), gen, x) + 0.2 * _randn((b, c, h, w), gen, x)
    return (v.clamp(0, 1) - 0.5) / 0.5


def shuffle_fill(x: Tensor, region: Tensor, gen: torch.Generator, mode: str = "batch_all") -> Tensor:
    """Shuffle infill (C-5).

    `batch_all` (code): one random permutation of all elements of the whole (K,3,H,W) tensor, mixing images,
    channels, fg and bg; `region` is ignored. `region` (paper, "shuffle pixel values in the region"): for each
    image, the pixels where `region` (K,1,H,W) is 1 are permuted among those positions, each pixel moving with
    its 3 channels; pixels outside the region keep their values.
    """
    if mode == "batch_all":
        perm = torch.randperm(x.numel(), generator=gen, device=gen.device).to(x.device)
        return x.reshape(-1)[perm].reshape_as(x)
    if mode != "region":
        raise ValueError(f"shuffle mode must be one of {SHUFFLE_MODES}, not {mode!r}")
    b, c, h, w = x.shape
    inside = region.reshape(b, h * w) > 0
    keys = torch.rand((b, h * w), generator=gen, device=gen.device).to(x.device).masked_fill(~inside, 2.0)
    src = keys.argsort(dim=1, stable=True)  # region positions in random order, then the others in ascending order
    dst = (~inside).to(torch.int8).argsort(dim=1, stable=True)  # region positions ascending, then the others
    perm = torch.empty_like(src).scatter_(1, dst, src)
    flat = x.reshape(b, c, h * w)
    return flat.gather(2, perm[:, None, :].expand(b, c, h * w)).reshape_as(x)


def _longest_run(flags: Tensor) -> tuple[Tensor, Tensor]:
    """(length, start) of the first longest run of True along the last dim of `flags` (B, L)."""
    idx = torch.arange(flags.shape[-1], device=flags.device)
    last_false = torch.where(flags, -1, idx).cummax(-1).values
    run = torch.where(flags, idx - last_false, 0)
    length, end = run.max(-1)
    return length, (end - length + 1).clamp(min=0)


def tile_fill(x: Tensor, keep: Tensor) -> Tensor:
    """Tile infill, Algorithm 1 in code semantics (§5.3).

    Per image: the longest run of rows with keep = 1 over the full width (a horizontal band) and of columns with
    keep = 1 over the full height (a vertical band); the thicker one is tiled from the top-left over the image
    (ties -> horizontal). With neither band, xhat = 0; an image with keep all 1 tiles itself, xhat = x. The
    code's batch shortcuts (keep all 1 -> x, all 0 -> zeros) therefore hold without a special case.
    """
    b, _, h, w = x.shape
    bg = keep[:, 0] > 0
    band_h, start_h = _longest_run(bg.all(-1))
    band_w, start_w = _longest_run(bg.all(-2))
    horizontal = band_h >= band_w
    r, c = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    rows = torch.where(horizontal[:, None], start_h[:, None] + r % band_h.clamp(min=1)[:, None], r)
    cols = torch.where(horizontal[:, None], c, start_w[:, None] + c % band_w.clamp(min=1)[:, None])
    xhat = x.gather(2, rows[:, None, :, None].expand_as(x))
    xhat = xhat.gather(3, cols[:, None, None, :].expand_as(x))
    has_band = torch.maximum(band_h, band_w) > 0
    return xhat * has_band[:, None, None, None].to(x.dtype)


def _bbox_keep(keep: Tensor, x0_bug: bool) -> Tensor:
    """IN-9 Tile path: keep -> 1 - bbox(fg); with the x=0 bug a box starting at column 0 is ignored (keep = 1)."""
    box = rect(1 - keep)
    new = 1 - box
    if x0_bug:
        at_x0 = box[:, 0, :, 0].amax(-1) > 0
        new = torch.where(at_x0[:, None, None, None], torch.ones_like(new), new)
    return new


def _tiled(x: Tensor, keep: Tensor, bbox: bool, x0_bug: bool) -> Tensor:
    """The Tile inpainter's output image keep*x + (1-keep)*tile_fill(x, keep), optionally in bbox mode."""
    if bbox:
        keep = _bbox_keep(keep, x0_bug)
    return keep * x + (1 - keep) * tile_fill(x, keep)


def counterfactual(name: str, x: Tensor, mask: Tensor, gen: torch.Generator, *, cagan: Tensor | None = None,
                   shuffle: str = "batch_all", tile_x0_bug: bool = True, tile_bbox: bool = False,
                   rectangle: bool = True) -> Tensor:
    """CF image phi_cf(x, keep = 1 - Rect(mask)) of the K eligible images (§5.3, C-14); its label is "not y".
    `rectangle=False` (CCT, whose mask already is its boxes' union, C-14) removes the mask itself.

    `tile_bbox=True` is the IN-9 Tile path (keep -> 1 - bbox of fg; with `tile_x0_bug` a box starting at column 0
    returns x unchanged, C-6). "cagan" returns the precomputed infill `cagan` (K,3,H,W) as it is: the infill
    was pasted outside the hole when it was generated and received the same crop and flip as x, so it already
    is the CF image (and a missing infill, zeros, is a grey image, as in the code).
    """
    if name == "cagan":
        if cagan is None:
            raise ValueError("CF 'cagan' needs the precomputed infills (batch key 'cagan')")
        return cagan
    keep = 1 - (rect(mask) if rectangle else mask)
    if name == "tile":
        return _tiled(x, keep, tile_bbox, tile_x0_bug)
    if name == "grey":
        xhat = grey_fill(x)
    elif name == "random":
        xhat = random_fill(x, gen)
    elif name == "shuffle":
        xhat = shuffle_fill(x, 1 - keep, gen, shuffle)
    else:
        raise ValueError(f"unknown CF infill {name!r}; choose from {CF_INFILLS}")
    return keep * x + (1 - keep) * xhat


def mrand_fill(x: Tensor, mask: Tensor, y: Tensor, gen: torch.Generator, x0_bug: bool = True) -> Tensor:
    """Mixed-Rand background: the bbox-mode Tile image of a uniformly drawn donor with a different label.

    A donor whose fg box starts at column 0 gives its whole image with the bug on (C-6). With K = 1 or a single
    label in the batch, xhat = 0.
    """
    other = y[None, :] != y[:, None]
    if not bool(other.any()):
        return torch.zeros_like(x)
    tiles = _tiled(x, 1 - mask, True, x0_bug)
    donor = torch.multinomial(other.float().to(gen.device), 1, generator=gen)[:, 0].to(x.device)
    return tiles[donor]


def _module_modes(model: nn.Module) -> list[tuple[nn.Module, bool]]:
    return [(m, m.training) for m in model.modules()]


def fgsm_fill(model: nn.Module, x: Tensor, mask: Tensor, y: Tensor, gen: torch.Generator,
              eps: float = 0.5) -> Tensor:
    """x + delta of fast FGSM with a random start on the background (§5.4, C-13), detached.

    delta ~ U(-eps, eps) everywhere; one step alpha = 1.25 eps along sign of the gradient of the summed CE (delta
    also on fg for the attack); projection to [-eps, eps]; clip so x + delta lies in [-1, 1]; delta = 0 on fg.
    The model runs in eval mode with parameter gradients off; its modes, requires_grad flags and .grad are
    restored/untouched afterwards. eps is in normalised units.
    """
    modes = _module_modes(model)
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        x = x.detach()
        delta = ((2 * _rand(tuple(x.shape), gen, x) - 1) * eps).requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(model(x + delta)[0].float(), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, delta)
    finally:
        for m, training in modes:
            m.training = training
        for p, req in flags:
            p.requires_grad_(req)
    delta = (delta.detach() + 1.25 * eps * grad.sign()).clamp(-eps, eps)
    delta = (x + delta).clamp(-1, 1) - x
    return x + delta * (1 - mask)


def factual(name: str, x: Tensor, mask: Tensor, y: Tensor, gen: torch.Generator, *, model: nn.Module | None = None,
            eps: float = 0.5, shuffle: str = "batch_all", tile_x0_bug: bool = True) -> Tensor:
    """F image Phi_f(x, keep = mask, y) = mask*x + (1-mask)*xhat of the K eligible images (§5.4); label y.

    `mask` is the exact fg mask (segmentation or bbox union), not its rectangle. "fgsm" needs `model`.
    """
    if name == "random":
        xhat = random_fill(x, gen)
    elif name == "shuffle":
        xhat = shuffle_fill(x, 1 - mask, gen, shuffle)
    elif name == "mrand":
        xhat = mrand_fill(x, mask, y, gen, tile_x0_bug)
    elif name == "fgsm":
        if model is None:
            raise ValueError("F 'fgsm' needs the model")
        xhat = fgsm_fill(model, x, mask, y, gen, eps)
    else:
        raise ValueError(f"unknown F infill {name!r}; choose from {F_INFILLS}")
    return mask * x + (1 - mask) * xhat
