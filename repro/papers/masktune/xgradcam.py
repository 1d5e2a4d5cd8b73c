"""MaskTune's saliency masks (masktune spec §4): XGradCAM (or ScoreCAM) maps from the `grad-cam` package,
the per-image mu + k*sigma threshold over strictly positive pixels, and the nearest-neighbour resize of a
mask to an original image.

grad-cam is pinned to 1.5.x. Against 1.3.7 (the version the authors used) the XGradCAM path is the same
computation (§4.2): argmax-logit target, weights sum(G*A)/(sum(A)+1e-7), ReLU, per-image min-max scaling,
cv2 bilinear upsampling, and the second min-max of `aggregate_multi_layers`. 1.5 wraps the target in
`ClassifierOutputTarget` and calls `model.zero_grad()`; neither changes a map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CAMS = ("xgradcam", "scorecam")


class _Logits(nn.Module):
    """grad-cam wants a model that returns logits; `repro` models return (logits, extra)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)[0]


def cam_maps(model: nn.Module, x: Tensor, cam: str = "xgradcam") -> Tensor:
    """(B, H, W) float maps in [0, 1] at the input size, for each image's own predicted class, computed by
    grad-cam on `model.cam_layer` in eval mode (running BN statistics, so images are independent, §7.4).
    The model's train/eval mode is restored afterwards."""
    from pytorch_grad_cam import ScoreCAM, XGradCAM

    if cam not in CAMS:
        raise ValueError(f"cam must be one of {', '.join(CAMS)}, not {cam!r}")
    was_training = model.training
    cls = XGradCAM if cam == "xgradcam" else ScoreCAM
    extractor = cls(_Logits(model), [model.cam_layer])
    try:
        maps = extractor(input_tensor=x, targets=None)
    finally:
        extractor.activations_and_grads.release()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return torch.from_numpy(maps).to(x.device)


def keep_masks(maps: Tensor, k: float = 2.0, pixels: str = "positive") -> Tensor:
    """1 where a pixel is kept, 0 where it is masked: masked iff H > mu + k*sigma, with mu and the
    population sigma over the strictly positive pixels of each map (`positive`, the code, D-4) or over all
    pixels (`all`). An all-zero map gives NaN statistics and masks nothing, as the code."""
    pos = (maps > 0).to(maps.dtype) if pixels == "positive" else torch.ones_like(maps)
    n = pos.sum(dim=(-2, -1), keepdim=True)
    mu = (maps * pos).sum(dim=(-2, -1), keepdim=True) / n
    var = (((maps - mu) * pos) ** 2).sum(dim=(-2, -1), keepdim=True) / n
    return (~(maps > mu + k * var.sqrt())).to(torch.uint8)


def resize_nearest(mask: Tensor, height: int, width: int) -> Tensor:
    """A (..., h, w) mask at (height, width) by OpenCV's INTER_NEAREST rule, source index floor(dst * src /
    dst), which is torch's `nearest` (not `nearest-exact`, not PIL's NEAREST) (§4.4)."""
    lead = mask.shape[:-2]
    flat = mask.reshape(-1, 1, *mask.shape[-2:]).float()
    return F.interpolate(flat, size=(height, width), mode="nearest").to(mask.dtype).reshape(*lead, height, width)
