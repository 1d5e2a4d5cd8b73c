"""Penalties of the actdiff paper on tiny inputs: identities from spec §13.4 and hand computations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from repro.methods import build_objective
from repro.papers.actdiff.penalty_actdiff import EPS, channel_l2_distance, layer_l2_distance
from repro.papers.actdiff.masking import shuffle_outside
from repro.models import build_model


def test_shuffle_outside_permutes_only_outside_pixels():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 36, dtype=torch.float32).reshape(2, 1, 6, 6)
    outside = torch.ones_like(x, dtype=torch.bool)
    outside[:, :, 2:4, 2:4] = False
    y = shuffle_outside(x, outside, g)
    assert torch.equal(y[~outside], x[~outside])
    for b in range(2):
        assert torch.equal(y[b][outside[b]].sort().values, x[b][outside[b]].sort().values)
    assert not torch.equal(y, x)


def test_shuffle_outside_is_a_uniform_permutation():
    g = torch.Generator().manual_seed(1)
    x = torch.tensor([[[[0.0, 1.0, 2.0]]]]).repeat(6000, 1, 1, 1)
    y = shuffle_outside(x, torch.ones_like(x, dtype=torch.bool), g)
    perms, counts = torch.unique(y.reshape(-1, 3), dim=0, return_counts=True)
    assert len(perms) == 6
    assert counts.min() > 850 and counts.max() < 1150  # 1000 expected each


def test_channel_l2_distance_matches_hand_computation_and_not_modern_pairwise():
    torch.manual_seed(0)
    a, b = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    c, d = torch.randn(2, 6, 2, 2), torch.randn(2, 6, 2, 2)
    by_hand = []
    for u, v in ((a, b), (c, d)):
        for i in range(u.shape[0]):
            for h in range(u.shape[2]):
                for w in range(u.shape[3]):
                    by_hand.append(float(((u[i, :, h, w] - v[i, :, h, w] + EPS) ** 2).sum().sqrt()))
    got = channel_l2_distance([a, c], [b, d])  # per sample; every sample has as many positions
    assert got.shape == (2,) and got.mean().item() == pytest.approx(sum(by_hand) / len(by_hand), rel=1e-6)
    modern = nn.PairwiseDistance(p=2)(a, b).mean()  # reduces over W in current torch: a different loss
    assert abs(modern.item() - channel_l2_distance([a], [b]).mean().item()) > 1e-3


def test_layer_l2_distance_is_mean_over_layers_of_whole_layer_norms():
    a, b = torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)
    c, d = torch.ones(1, 1, 1, 1) * 3, torch.zeros(1, 1, 1, 1)
    assert layer_l2_distance([a, c], [b, d]).item() == pytest.approx((8**0.5 + 3) / 2)


def _batch(n=4, size=28):
    torch.manual_seed(0)
    x = (torch.rand(n, 1, size, size) > 0.8).float()
    m = torch.zeros_like(x)
    m[:, :, 5:15, 5:15] = 1
    return x, torch.tensor([0, 1] * (n // 2)), m


@pytest.mark.parametrize("model", ["cnn", "conv_ae", "unet", "resnet"])
@pytest.mark.parametrize("terms", [{}, {"actdiff": {}}, {"gradmask": {}}, {"actdiff": {}, "gradmask": {}},
                                   {"actdiff": {"distance": "paper_layer_l2"}}, {"gradmask": {"norm": "l2"}}])
def test_every_model_and_penalty_trains_a_step(model, terms):
    net = build_model(model)
    spec = {k: {"weight": 10.0, **v} for k, v in terms.items()}
    if model in ("conv_ae", "unet"):
        spec["recon"] = {"weight": 10.0, "loss": "bce", "target": "input"}
    x, y, m = _batch()
    loss, parts = build_objective(spec)(net, x, y, m, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and set(parts) == {"ce", *spec}
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("model", ["unet", "resnet"])
def test_reconstruct_masked_targets_the_shuffled_input(model):
    if model == "resnet":
        with pytest.raises(ValueError, match="decoder"):
            build_objective({"recon": {"weight": 1.0, "target": "shuffled"}})(build_model(model), *_batch(),
                                                                              torch.Generator())
        return
    x, y, m = _batch()
    loss, parts = build_objective({"recon": {"weight": 1.0, "target": "shuffled"}})(
        build_model(model), x, y, m, torch.Generator().manual_seed(0))
    assert parts["recon"] > 0


def test_actdiff_is_eps_level_when_mask_covers_everything():
    net = build_model("unet")
    x, y, _ = _batch()
    ones = torch.ones_like(x)
    _, parts = build_objective({"actdiff": {"weight": 1.0}})(net, x, y, ones, torch.Generator().manual_seed(0))
    c_max = 128
    assert 0 <= parts["actdiff"].item() <= c_max**0.5 * EPS * 1.01


def test_gradmask_is_zero_when_mask_covers_everything():
    net = build_model("resnet")
    x, y, _ = _batch()
    _, parts = build_objective({"gradmask": {"weight": 10.0}})(net, x, y, torch.ones_like(x), torch.Generator())
    assert parts["gradmask"].item() == 0.0


def test_gradmask_is_zero_when_the_gradient_vanishes_outside_the_mask():
    class LeftHalf(nn.Module):
        """Logits read only the left half of the image: zero input gradient on the right half."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(28 * 14, 2)
            self.record, self.activations = False, []

        def forward(self, x):
            return self.fc(x[..., :14].flatten(1)), None

    x, y, _ = _batch()
    m = torch.zeros_like(x)
    m[..., :14] = 1  # ROI = left half; outside = right half, where d logits / dx = 0
    _, parts = build_objective({"gradmask": {"weight": 10.0}})(LeftHalf(), x, y, m, torch.Generator())
    assert parts["gradmask"].item() == 0.0
    m_flipped = 1 - m
    _, parts = build_objective({"gradmask": {"weight": 10.0}})(LeftHalf(), x, y, m_flipped, torch.Generator())
    assert parts["gradmask"].item() > 0


def test_gradmask_l1_equals_hand_computed_sum():
    torch.manual_seed(0)
    lin = nn.Linear(4, 2)

    class Net(nn.Module):
        record, activations = False, []

        def forward(self, x):
            return lin(x.flatten(1)), None

    x = torch.randn(3, 1, 2, 2)
    m = torch.tensor([1.0, 0.0, 1.0, 0.0]).reshape(1, 1, 2, 2).expand(3, 1, 2, 2)
    _, parts = build_objective({"gradmask": {"weight": 2.0}})(Net(), x, torch.tensor([0, 1, 0]), m, torch.Generator())
    logits = lin(x.flatten(1))
    sign = torch.sign(logits[:, 0] - logits[:, 1])[:, None]
    g = sign * (lin.weight[0] - lin.weight[1])[None]  # d|z0-z1|/dx for a linear model
    expected = 2.0 * (g * (m.flatten(1) != 1)).abs().sum()
    assert parts["gradmask"].item() == pytest.approx(expected.item(), rel=1e-5)
