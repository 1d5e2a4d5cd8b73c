"""Figure-grade IG and activation maps (repro.papers.tap.saliency_maps) against hand computations."""

from __future__ import annotations

import torch
from torch import nn

from repro.models import build_model
from repro.papers.tap.model_tap_cnn import StagedNet
from repro.papers.tap.saliency_maps import stage_maps


def _linear_net(c: int = 2, h: int = 4, w: int = 6, k: int = 3) -> StagedNet:
    torch.manual_seed(0)
    return StagedNet([nn.Identity()], nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, k)))


def test_input_gradient_equals_the_hand_computation_on_a_linear_model():
    net = _linear_net()
    x = torch.randn(5, 2, 4, 6)
    lin = net.head[1]
    # sum_k log_softmax(z)_k = sum_k z_k - K logsumexp(z)  =>  d/dz = 1 - K softmax(z);  d/dx = W^T (1 - K p)
    p = torch.softmax(x.flatten(1) @ lin.weight.T + lin.bias, 1)
    grad = ((1 - 3 * p) @ lin.weight).view_as(x)
    maps = stage_maps(net, x, batch=2)
    assert torch.allclose(maps["ig"], grad.abs().sum(1), atol=1e-6)
    assert not torch.allclose(maps["ig"], grad.sum(1).abs(), atol=1e-3)  # abs before the channel sum
    assert torch.equal(maps["act1"], x.sum(1))  # identity stage: the channel sum of the input itself


def test_activation_maps_are_upsampled_channel_sums_at_the_input_size():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 3, 2, stride=2)
    net = StagedNet([conv, nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))],
                    nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 2, 2)))
    x = torch.randn(4, 1, 8, 8)
    maps = stage_maps(net, x)
    a1 = conv(x).detach().sum(1)  # (4, 4, 4): each value covers a 2x2 input block
    a2 = nn.functional.max_pool2d(torch.relu(conv(x)), 2).detach().sum(1)  # (4, 2, 2): 4x4 input blocks
    assert maps["act1"].shape == maps["act2"].shape == (4, 8, 8)
    assert torch.allclose(maps["act1"], a1.repeat_interleave(2, 1).repeat_interleave(2, 2), atol=1e-6)
    assert torch.allclose(maps["act2"], a2.repeat_interleave(4, 1).repeat_interleave(4, 2), atol=1e-6)


def test_resnet18_gives_ig_and_four_stage_maps_and_restores_its_state():
    net = build_model("resnet18", num_classes=2, init="random")
    net.train()
    x = torch.randn(3, 3, 32, 32)
    maps = stage_maps(net, x, batch=2)
    assert list(maps) == ["ig", "act1", "act2", "act3", "act4"]
    assert all(m.shape == (3, 32, 32) and torch.isfinite(m).all() for m in maps.values())
    assert (maps["act4"] >= 0).all() and maps["ig"].sum() > 0  # post-ReLU stage outputs; a non-zero gradient
    assert net.training and not net.record and net.activations == []
    net.eval()  # chunking does not change the maps (eval-mode BN: no batch statistics)
    whole = stage_maps(net, x, batch=3)
    assert all(torch.allclose(whole[k], maps[k], atol=1e-5) for k in maps)
