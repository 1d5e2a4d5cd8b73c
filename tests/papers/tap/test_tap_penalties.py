"""TAP, RRR and RBR (tap spec §4.2-4.4): mask schedules, zero cases, hand computations, one training step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import repro.papers.tap.penalty_rbr  # registers rbr
import repro.papers.tap.penalty_rrr  # registers rrr
import repro.papers.tap.penalty_tap  # registers tap
import repro.papers.tap.model_imagenet  # registers the ImageNet models
import repro.papers.tap.model_tap_cnn  # noqa: F401  (registers tap_cnn)
from repro.methods import StepContext, build_objective
from repro.papers.tap.penalty_rbr import influence
from repro.papers.tap.penalty_tap import TapPenalty, chained_masks, direct_masks
from repro.models import build_model

# Spec §4.2 mask schedules: the activation sides each model's targeted layers have (input side first).
SCHEDULES = {
    "resnet18": (224, [56, 28, 14, 7]),
    "vgg16": (224, [112, 56, 28, 14, 7]),
    "vgg16_4": (224, [56, 28, 14, 7]),
    "densenet121": (224, [28, 14, 7, 7]),
    "tap_cnn": (28, [14, 6]),
}


def _box(n: int, side: int, h: int, w: int) -> torch.Tensor:
    """(n, 1, side, side) penalty masks, an h x w box in the top-left corner (the spec's tag box)."""
    m = torch.zeros(n, 1, side, side)
    m[..., :h, :w] = 1
    return m


def _ctx(mask, acts=(), model=None, x=None, y=None):
    return StepContext(model, x, y, mask, [torch.Generator()], activations=list(acts))


@pytest.mark.parametrize("arch", list(SCHEDULES))
def test_chained_schedule_shapes(arch):
    side, sides = SCHEDULES[arch]
    masks = chained_masks(_box(2, side, 22, 44), [(s, s) for s in sides])
    assert [tuple(m.shape) for m in masks] == [(2, 1, s, s) for s in sides]


def test_chained_first_step_by_hand():
    m14 = chained_masks(_box(1, 28, 4, 4), [(14, 14)])[0][0, 0]  # MNIST patch: dilate to 5x5, average 2x2
    expected = torch.zeros(14, 14)
    expected[:3, :3] = torch.tensor([[1, 1, .5], [1, 1, .5], [.5, .5, .25]])
    assert torch.equal(m14, expected)


def test_chained_special_steps():
    m = torch.rand(2, 1, 28, 28).round()
    m14, m6 = chained_masks(m, [(14, 14), (6, 6)])
    m7 = F.avg_pool2d(F.max_pool2d(m14, 3, 1, 1), 2)
    assert torch.equal(m6, m7[..., :6, :6])  # nearest 6/7 keeps source rows/columns 0-5
    d = chained_masks(_box(1, 224, 22, 44), [(28, 28), (14, 14), (7, 7), (7, 7)])
    assert torch.equal(d[3], d[2])  # DenseNet's last step: k = 1, no dilation


def test_chained_dilation_repeats_unlike_direct():
    m = torch.zeros(1, 1, 8, 8)
    m[..., 0, 0] = 1
    chained, direct = chained_masks(m, [(4, 4), (2, 2)]), direct_masks(m, [(4, 4), (2, 2)])
    assert torch.equal(chained[0], direct[0])
    assert chained[1][0, 0, 0, 0] == 1 and direct[1][0, 0, 0, 0] == 0.25  # D-2


@pytest.mark.parametrize("norm", ["squared", "l1"])
@pytest.mark.parametrize("downscale", ["chained", "direct"])
def test_tap_by_hand(norm, downscale):
    torch.manual_seed(0)
    mask = _box(3, 4, 2, 3)
    a1, a2 = torch.randn(3, 2, 4, 4), torch.randn(3, 5, 2, 2)
    m1 = mask if downscale == "chained" else F.max_pool2d(mask, 3, 1, 1)  # k = 1: chained leaves it as is
    m2 = F.avg_pool2d(F.max_pool2d(mask, 3, 1, 1), 2)
    f = torch.square if norm == "squared" else torch.abs
    per = [f(m * a.sum(1, keepdim=True)).sum((1, 2, 3)) for m, a in ((m1, a1), (m2, a2))]
    got = TapPenalty(norm, downscale)(_ctx(mask, [a1, a2]))  # per sample; the batch mean is `reduce`
    assert TapPenalty.reduce == "mean"
    torch.testing.assert_close(got, (per[0] + per[1]) / 2)


def test_tap_zero_for_empty_mask():
    acts = [torch.rand(2, 8, 14, 14), torch.rand(2, 8, 6, 6)]
    assert (TapPenalty()(_ctx(torch.zeros(2, 1, 28, 28), acts)) == 0).all()


def test_tap_zero_when_activations_vanish_inside_the_downscaled_mask():
    mask = _box(2, 28, 4, 4)
    sizes = [(14, 14), (6, 6)]
    acts = [torch.rand(2, 8, *s) * (m == 0) for s, m in zip(sizes, chained_masks(mask, sizes))]
    assert (TapPenalty()(_ctx(mask, acts)) == 0).all()
    acts[1][..., 0, 0] = 1.0  # inside the downscaled mask
    assert TapPenalty()(_ctx(mask, acts)).sum().item() > 0


class Wrapped(nn.Module):
    """A plain module returning (logits, None), as the registry's models do."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net, self.record, self.activations = net, False, []

    def forward(self, x):
        return self.net(x), None


def _linear_case() -> tuple[nn.Linear, Wrapped, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A linear model on 2x2x2 inputs, 4 samples, masks of areas 1, 2, 2, 2."""
    torch.manual_seed(0)
    lin = nn.Linear(8, 3)
    x, y = torch.randn(4, 2, 2, 2), torch.tensor([0, 1, 2, 0])
    mask = torch.zeros(4, 1, 2, 2)
    mask[:, :, 0, 0] = 1
    mask[1:, :, 1, 1] = 1
    return lin, Wrapped(nn.Sequential(nn.Flatten(), lin)), x, y, mask


def test_rrr_equals_closed_form_on_a_linear_model():
    lin, model, x, y, mask = _linear_case()
    _, parts = build_objective({"rrr": {"weight": 1.0}})(model, x, y, mask, torch.Generator())
    with torch.no_grad():
        p = lin(x.flatten(1)).softmax(1)
        g = (1 - 3 * p) @ lin.weight  # d/dx sum_k log p_k = W^T (1 - K p)
        g = g.view(4, 2, 2, 2).sum(1, keepdim=True)
        scaled = mask * 4 / mask.sum((1, 2, 3), keepdim=True)
        expected = (scaled * g).square().sum((1, 2, 3)).mean()
    assert parts["rrr"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_rrr_paper_variant_is_eq4_on_a_linear_model():
    lin, model, x, y, mask = _linear_case()
    _, parts = build_objective({"rrr": {"weight": 1.0, "output": "logits"}})(model, x, y, mask, torch.Generator())
    with torch.no_grad():
        g = lin.weight.sum(0).view(1, 2, 2, 2)  # d/dx sum_k f_k = sum_k W_k, the same for every sample
        expected = (mask * g).square().sum((1, 2, 3)).mean()  # plain mask, per-channel squares
    assert parts["rrr"].item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="log_softmax, logits"):
        build_objective({"rrr": {"weight": 1.0, "output": "probs"}})


def test_rrr_with_all_ones_mask_is_the_mean_squared_norm_of_the_eval_mode_gradient():
    torch.manual_seed(0)
    model = Wrapped(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(4 * 36, 2)))
    x, y = torch.randn(3, 3, 6, 6), torch.tensor([0, 1, 1])
    _, parts = build_objective({"rrr": {"weight": 1.0}})(model, x, y, torch.ones(3, 1, 6, 6), torch.Generator())
    assert model.training  # the eval-mode gradient pass restores train mode
    model.eval()
    xe = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.log_softmax(model(xe)[0], 1).sum(), xe)
    expected = g.sum(1).square().sum((1, 2)).mean()
    assert parts["rrr"].item() == pytest.approx(expected.item(), rel=1e-5)


def _conv_net() -> Wrapped:
    torch.manual_seed(0)
    return Wrapped(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                                 nn.Flatten(), nn.Linear(4 * 25, 2)))


def test_code_order_influence_is_the_first_conv_path():
    model, x, y = _conv_net(), torch.randn(2, 3, 5, 5), torch.tensor([0, 1])
    first = model.net[0]
    z1 = first(x)
    ce = F.cross_entropy(model.net[1:](z1), y)
    x.requires_grad_(True)  # after the CE forward, as the code does (D-9)
    got = influence(ce, model, x)
    (delta,) = torch.autograd.grad(ce, z1, retain_graph=True)
    expected = 3 * F.conv_transpose2d(delta.sum(1, keepdim=True), torch.ones(1, 1, 3, 3), padding=1)
    torch.testing.assert_close(got, expected)


def test_rbr_runs_and_its_influence_variants_differ():
    mask, y = _box(2, 5, 2, 3), torch.tensor([0, 1])
    values = {}
    for mode in ("code", "full"):
        x = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(1))  # fresh: rbr sets requires_grad
        objective = build_objective({"rbr": {"weight": 1.0, "influence": mode}})
        values[mode] = objective(_conv_net(), x, y, mask, torch.Generator())[1]["rbr"].item()
    assert all(v > 0 and v < float("inf") for v in values.values())
    assert values["code"] != pytest.approx(values["full"], rel=1e-3)


def test_bad_switch_values_are_rejected():
    with pytest.raises(KeyError):
        TapPenalty(norm="l2")
    with pytest.raises(ValueError, match="code, full"):
        build_objective({"rbr": {"weight": 1.0, "influence": "hessian"}})


_MODELS: dict[str, nn.Module] = {}
SETUPS = {"tap_cnn": ({}, 1, 28, 4, 4), "vgg16": ({"init": "random"}, 3, 64, 6, 12),
          "resnet18": ({"init": "random", "num_classes": 5}, 3, 64, 6, 12),
          "densenet121": ({"init": "random"}, 3, 64, 6, 12)}


SPECS = {"none": {}, "rrr": {"rrr": {"weight": 1.0}}, "rrr_logits": {"rrr": {"weight": 1.0, "output": "logits"}},
         "rbr": {"rbr": {"weight": 1.0}}, "rbr_full": {"rbr": {"weight": 1.0, "influence": "full"}},
         "tap": {"tap": {"weight": 1.0}}}


@pytest.mark.parametrize("name", list(SETUPS))
@pytest.mark.parametrize("method", list(SPECS))
def test_every_model_and_method_trains_an_sgd_step(name, method):
    kwargs, c, side, h, w = SETUPS[name]
    torch.manual_seed(0)
    if name not in _MODELS:  # one build per architecture for the whole module (VGG-16 takes seconds)
        _MODELS[name] = build_model(name, **kwargs)
    net = _MODELS[name]
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    spec = SPECS[method]
    x, y = torch.rand(2, c, side, side), torch.tensor([0, 1])
    loss, parts = build_objective(spec)(net, x, y, _box(2, side, h, w), torch.Generator())
    assert torch.isfinite(loss) and set(parts) == {"ce", *spec}
    assert all(v > 0 for v in parts.values())
    before = [p.detach().clone() for p in net.parameters()]
    opt.zero_grad()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))
