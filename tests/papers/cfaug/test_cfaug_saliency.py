"""Saliency AUPR (cfaug spec §7.3, §10.12, C-20, C-21) on tiny models and images."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import Tensor, nn

pytest.importorskip("captum")

from repro.papers.cfaug.saliency import FunctionalReLU, average_precision, image_aps, saliency_aupr  # noqa: E402
from repro.models import build_model  # noqa: E402

S = 8
REGION = torch.zeros(1, 1, S, S)
REGION[..., 2:6, 2:6] = 1


class Masked(nn.Module):
    """Logits from `keep ⊙ x` only, through a conv, a ReLU module and a linear head."""

    def __init__(self, keep: Tensor) -> None:
        super().__init__()
        self.register_buffer("keep", keep)
        self.conv = nn.Conv2d(3, 4, 1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        return self.fc(self.relu(self.conv(x * self.keep)).mean((2, 3))), None


def _data(n: int = 6, size: int = S) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    labels = torch.randint(0, 2, (n,), generator=g)
    masks = torch.zeros(n, 1, size, size)
    masks[..., size // 4:3 * size // 4, size // 4:3 * size // 4] = 1
    return images, labels, masks


def test_average_precision_same_for_squared_sum_and_l2_norm():
    g = torch.Generator().manual_seed(3)
    attr, mask = torch.randn(3, 16, 16, generator=g), torch.rand(16, 16, generator=g) > 0.7
    squared = average_precision(attr.pow(2).sum(0), mask)
    assert squared == average_precision(attr.norm(dim=0), mask)
    assert squared != average_precision(attr.sum(0), mask)  # a different ranking does change it
    assert average_precision(mask.float() + 0.1 * torch.rand(16, 16, generator=g), mask) == 1.0


def test_region_model_beats_background_model():
    images, labels, masks = _data()
    torch.manual_seed(0)
    kw = {"baselines": 3, "batch": 4, "chunk": 2, "relu": "modules"}
    fg = saliency_aupr(Masked(REGION), images, labels, masks, **kw)
    bg = saliency_aupr(Masked(1 - REGION), images, labels, masks, **kw)
    assert fg > 95 and bg < 40


def test_trivial_masks_are_skipped_and_baselines_do_not_depend_on_masks():
    images, labels, masks = _data()
    torch.manual_seed(1)
    model, kw = Masked(torch.ones(1, 1, S, S)), {"baselines": 3, "batch": 4, "chunk": 2, "relu": "modules"}
    full = image_aps(model, images, labels, masks, **kw)
    masks[0], masks[4] = 0, 1
    part = image_aps(model, images, labels, masks, **kw)
    assert not full.isnan().any() and part.isnan().tolist() == [True, False, False, False, True, False]
    keep = [1, 2, 3, 5]
    assert torch.equal(part[keep], full[keep])
    assert saliency_aupr(model, images, labels, masks, **kw) == pytest.approx(100 * full[keep].mean().item())
    assert math.isnan(saliency_aupr(model, images, labels, torch.zeros_like(masks), **kw))


def test_seed_makes_it_deterministic():
    images, labels, masks = _data()
    torch.manual_seed(2)
    model, kw = Masked(torch.ones(1, 1, S, S)), {"baselines": 2, "relu": "modules"}
    a = image_aps(model, images, labels, masks, seed=5, **kw)
    assert torch.equal(a, image_aps(model, images, labels, masks, seed=5, **kw))
    assert not torch.equal(a, image_aps(model, images, labels, masks, seed=6, **kw))


def _swap_body_relus(model: nn.Module) -> None:
    for parent in list(model.net.stages.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, name, FunctionalReLU())


def test_functional_mode_skips_only_the_body_relus_and_restores_the_model():
    images, labels, masks = _data(4, 32)
    torch.manual_seed(3)
    model = build_model("bit_tiny", num_classes=2)
    model.train()
    model.net.head.eval()  # a mixed mode, which must survive as it is
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    state = copy.deepcopy(model.state_dict())
    kw = {"baselines": 2, "batch": 4, "chunk": 2}
    functional = image_aps(model, images, labels, masks, relu="functional", **kw)
    manual = copy.deepcopy(model)
    _swap_body_relus(manual)
    assert torch.allclose(functional, image_aps(manual, images, labels, masks, relu="modules", **kw))
    assert not torch.allclose(functional, image_aps(model, images, labels, masks, relu="modules", **kw))
    assert [m for m in model.modules() if isinstance(m, nn.ReLU)] == relus
    assert model.training and not model.net.head.training and model.net.stages.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules())


def test_functional_mode_needs_a_resnetv2_and_bad_mode_is_rejected():
    images, labels, masks = _data()
    with pytest.raises(ValueError, match="ResNetV2"):
        saliency_aupr(Masked(REGION), images, labels, masks, baselines=2)
    with pytest.raises(ValueError, match="relu"):
        saliency_aupr(Masked(REGION), images, labels, masks, relu="deeplift")
