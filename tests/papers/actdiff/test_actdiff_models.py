"""Architectures of the actdiff paper: parameter counts and shapes from spec §3 and §13.4."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from repro.models import MODELS, build_model

MSD = {"img_size": 100, "nc": 64}
UNET_SHAPES = [(16, 28, 28)] * 2 + [(32, 14, 14)] * 2 + [(64, 7, 7)] * 2 + [(128, 3, 3)] * 2
UNET_MSD_SHAPES = [(64, 100, 100)] * 2 + [(128, 50, 50)] * 2 + [(256, 25, 25)] * 2 + [(512, 12, 12)] * 2


def _params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("name,kwargs,params", [
    ("cnn", {}, 295_538), ("conv_ae", {}, 440_931), ("unet", {}, 489_315),
    ("cnn", MSD, 4_831_682), ("conv_ae", MSD, 7_155_075), ("unet", MSD, 7_929_219),
    ("resnet", {}, 11_168_706), ("resnet", {"img_size": 100}, 11_176_898), ("resnet", {"img_size": 128}, 11_184_066),
])
def test_parameter_counts(name, kwargs, params):
    assert _params(build_model(name, **kwargs)) == params


@pytest.mark.parametrize("kwargs,enc,fc", [({}, 293_232, 2_306), (MSD, 4_684_224, 147_458)])
def test_unet_encoder_and_fc_counts(kwargs, enc, fc):
    net = build_model("cnn", **kwargs)
    assert (_params(net.enc), _params(net.fc)) == (enc, fc)


def test_unet_fc_inputs():
    assert build_model("cnn").fc.in_features == 1152
    assert build_model("cnn", **MSD).fc.in_features == 73_728


def test_resnet_fc_inputs():
    assert [build_model("resnet", img_size=s).linear.in_features for s in (28, 100, 128)] == [512, 4608, 8192]
    assert build_model("resnet", img_size=100, base_size=4608).linear.in_features == 4608


@pytest.mark.parametrize("name", ["cnn", "conv_ae", "unet"])
def test_unet_family_shapes_and_recorded_activations(name):
    torch.manual_seed(0)
    net = build_model(name)
    net.record = True
    logits, recon = net(torch.rand(3, 1, 28, 28))
    assert logits.shape == (3, 2)
    if name == "cnn":
        assert recon is None
    else:
        assert recon.shape == (3, 1, 28, 28) and 0 <= recon.min() and recon.max() <= 1  # sigmoid
    assert [tuple(a.shape) for a in net.activations] == [(3, *s) for s in UNET_SHAPES]
    assert all((a >= 0).all() for a in net.activations)  # post-ReLU, as the code's in-place ReLU leaves them
    first = net.activations
    net.record = False
    net(torch.rand(3, 1, 28, 28))
    assert net.activations == [] and len(first) == 8  # nothing kept; the old list is not reused


def test_pre_relu_activations_are_the_conv_outputs():
    torch.manual_seed(0)
    post = build_model("unet")
    pre = build_model("unet", act_point="pre_relu")
    pre.load_state_dict(post.state_dict())
    post.record = pre.record = True
    x = torch.rand(2, 1, 28, 28)
    out_post, out_pre = post(x), pre(x)
    assert all(torch.equal(a, b) for a, b in zip(out_post, out_pre))  # recording point does not change outputs
    assert all((a < 0).any() for a in pre.activations)
    assert len(pre.activations) == 8
    assert all(torch.equal(F.relu(a), b) for a, b in zip(pre.activations, post.activations))


@pytest.mark.parametrize("name", ["conv_ae", "unet"])
def test_decoder_upsamples_with_aligned_corners_then_concatenates_the_skip(name):
    net = build_model(name)
    seen = {}
    net.enc[2].register_forward_hook(lambda m, args, out: seen.update(e3=out.clone()))
    net.enc[3].register_forward_hook(lambda m, args, out: seen.update(e4=out.clone()))
    net.dec[0].register_forward_pre_hook(lambda m, args: seen.update(d=args[0].clone()))
    net(torch.rand(2, 1, 28, 28))
    up = F.interpolate(seen["e4"], size=(7, 7), mode="bilinear", align_corners=True)
    torch.testing.assert_close(seen["d"], torch.cat([up, seen["e3"]], 1) if name == "unet" else up)


def test_normrecon_is_a_final_sigmoid():
    torch.manual_seed(0)
    linear, squashed = build_model("conv_ae", normrecon=False), build_model("conv_ae")
    squashed.load_state_dict(linear.state_dict())
    x = torch.rand(2, 1, 28, 28)
    raw = linear(x)[1]
    assert raw.shape == (2, 1, 28, 28) and not torch.allclose(raw, torch.sigmoid(raw))
    torch.testing.assert_close(squashed(x)[1], torch.sigmoid(raw))


@pytest.mark.parametrize("act_point", ["post_relu", "pre_relu"])
def test_recorded_activations_carry_double_backward(act_point):
    net = build_model("unet", act_point=act_point)
    net.record = True
    x = torch.rand(2, 1, 28, 28, requires_grad=True)
    logits, _ = net(x)
    (g,) = torch.autograd.grad((logits[:, 0] - logits[:, 1]).abs().sum(), x, create_graph=True)
    (g.abs().sum() + sum(a.sum() for a in net.activations)).backward()  # gradmask + actdiff-like terms
    assert net.enc[0].conv1.weight.grad is not None


def test_unet_msd_size_forward():
    net = build_model("unet", normrecon=False, **MSD)
    net.record = True
    with torch.no_grad():
        logits, recon = net(torch.rand(1, 1, 100, 100))
    assert logits.shape == (1, 2) and recon.shape == (1, 1, 100, 100)
    assert [tuple(a.shape[1:]) for a in net.activations] == UNET_MSD_SHAPES


def test_resnet_shapes_and_recorded_activations():
    torch.manual_seed(0)
    net = build_model("resnet")
    net.record = True
    logits, recon = net(torch.rand(2, 1, 28, 28))
    assert logits.shape == (2, 2) and recon is None
    shapes = [tuple(a.shape) for a in net.activations]
    assert shapes == ([(2, 64, 28, 28)] * 5 + [(2, 128, 14, 14)] * 4 + [(2, 256, 7, 7)] * 4
                      + [(2, 512, 4, 4)] * 4)
    assert all((a < 0).any() for a in net.activations)  # true pre-activations (train-mode BN outputs)
    net.record = False
    net(torch.rand(2, 1, 28, 28))
    assert net.activations == []


def test_resnet_msd_size_forward():
    net = build_model("resnet", img_size=100)
    with torch.no_grad():
        assert net(torch.rand(1, 1, 100, 100))[0].shape == (1, 2)


def test_unknown_model_names_the_known_ones():
    assert set(MODELS) >= {"cnn", "conv_ae", "unet", "resnet"}
    with pytest.raises(KeyError) as err:
        build_model("vgg")
    assert all(name in str(err.value) for name in MODELS)


@pytest.mark.parametrize("name", ["cnn", "conv_ae", "unet", "resnet"])
def test_same_seed_same_weights(name):
    torch.manual_seed(0)
    a = build_model(name)
    torch.manual_seed(0)
    b = build_model(name)
    torch.manual_seed(1)
    c = build_model(name)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))
