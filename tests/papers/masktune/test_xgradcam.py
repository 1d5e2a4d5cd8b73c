"""MaskTune's XGradCAM maps (via grad-cam) against a hand computation, and the mu + 2 sigma keep masks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repro.papers.masktune.models import CamNet
from repro.papers.masktune.xgradcam import cam_maps, keep_masks, resize_nearest

pytest.importorskip("pytorch_grad_cam")


def _two_layer_net() -> CamNet:
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    net = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    return CamNet(net, conv[1])


def _minmax(m: torch.Tensor) -> torch.Tensor:
    m = m - m.amin(dim=(-2, -1), keepdim=True)
    return m / (1e-7 + m.amax(dim=(-2, -1), keepdim=True))


def test_xgradcam_equals_hand_computation():
    model = _two_layer_net()
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    a = model.cam_layer(model.net[0][0](x)).detach().requires_grad_(True)
    logits = model.net[1:](a)
    logits.gather(1, logits.argmax(1, keepdim=True)).sum().backward()  # target: the predicted class
    w = (a.grad * a).sum((2, 3)) / (a.detach().sum((2, 3)) + 1e-7)
    m = F.relu((w[:, :, None, None] * a.detach()).sum(1))
    expected = _minmax(F.relu(_minmax(m)))  # same size: the cv2 resize is the identity here
    got = cam_maps(model, x)
    assert got.shape == (3, 8, 8)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert model.training  # mode restored


def test_keep_mask_statistics_exclude_zeros():
    h = torch.zeros(1, 4, 4)
    h[0, 0, :4] = torch.tensor([0.1, 0.2, 0.3, 1.0])
    pos = h[h > 0]
    tau = pos.mean() + 2 * pos.std(unbiased=False)  # population std over the positive pixels only
    keep = keep_masks(h)
    assert keep.dtype == torch.uint8
    assert torch.equal(keep[0] == 0, h[0] > tau)
    # with the zeros included the threshold would drop below 1.0 and mask that pixel
    all_tau = h.mean() + 2 * h.std(unbiased=False)
    assert all_tau < 1.0 < tau and keep.all()


def test_all_zero_map_masks_nothing():
    assert keep_masks(torch.zeros(2, 5, 5)).all()


def test_nearest_resize_uses_floor_convention():
    src = torch.arange(3).reshape(1, 3).repeat(3, 1)  # columns 0, 1, 2
    out = resize_nearest(src, 3, 7)
    # OpenCV INTER_NEAREST: source column floor(j * 3 / 7) for j = 0..6
    assert out[0].tolist() == [0, 0, 0, 1, 1, 2, 2]
    exact = F.interpolate(src[None, None].float(), size=(3, 7), mode="nearest-exact")[0, 0, 0].tolist()
    assert exact != out[0].tolist()  # the half-pixel rule differs here, so the test can tell them apart
