"""TAP paper architectures (tap spec §3): targeted-layer shapes, heads, parameter counts, offline weights."""

from __future__ import annotations

import pytest
import torch

import repro.papers.tap.model_imagenet  # registers vgg16, resnet18, densenet121
import repro.papers.tap.model_tap_cnn  # noqa: F401  (registers tap_cnn)
from repro.models import build_model
from repro.papers.tap.model_imagenet import WEIGHTS

SHAPES_224 = {
    "vgg16": [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)],
    "resnet18": [(64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)],
    "densenet121": [(128, 28, 28), (256, 14, 14), (512, 7, 7), (1024, 7, 7)],
}
PARAMS_2_CLASSES = {"vgg16": 40_407_874, "resnet18": 11_177_538, "densenet121": 6_955_906}


def _params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_tap_cnn_is_net_one():
    torch.manual_seed(0)
    net = build_model("tap_cnn")
    assert _params(net) == 127_110  # §3.1: 1,000 + 90,100 + 36,010
    net.record = True
    logits, recon = net(torch.rand(2, 1, 28, 28))
    assert logits.shape == (2, 10) and recon is None
    assert [tuple(a.shape) for a in net.activations] == [(2, 100, 14, 14), (2, 100, 6, 6)]
    assert all((a >= 0).all() for a in net.activations)  # post-ReLU, post-pool
    net.record = False
    net(torch.rand(2, 1, 28, 28))
    assert net.activations == []


@pytest.mark.parametrize("name", list(SHAPES_224))
def test_targeted_layers_and_head_at_224(name):
    torch.manual_seed(0)
    net = build_model(name, init="random").eval()
    assert _params(net) == PARAMS_2_CLASSES[name]  # §3.2 heads with K = 2
    net.record = True
    with torch.no_grad():
        logits, recon = net(torch.rand(1, 3, 224, 224))
    assert logits.shape == (1, 2) and recon is None
    acts = net.activations
    assert [tuple(a.shape[1:]) for a in acts] == SHAPES_224[name]
    if name == "densenet121":  # D-7: transition outputs can be negative, norm5 is taken after its ReLU
        assert all((a < 0).any() for a in acts[:3]) and (acts[3] >= 0).all()
    else:
        assert all((a >= 0).all() for a in acts)


def test_vgg16_four_layer_variant_drops_the_first():
    net = build_model("vgg16", init="random", layers=4).eval()
    net.record = True
    with torch.no_grad():
        net(torch.rand(1, 3, 64, 64))
    assert [tuple(a.shape[1:]) for a in net.activations] == [(128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]


def test_densenet121_dense_block_targets_keep_the_logits():
    torch.manual_seed(0)
    code = build_model("densenet121", init="random").eval()
    torch.manual_seed(0)  # the same modules, built in the same order, regrouped into stages and head
    blocks = build_model("densenet121", init="random", targets="dense_blocks").eval()
    code.record = blocks.record = True
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(code(x)[0], blocks(x)[0])
    assert [tuple(a.shape[1:]) for a in blocks.activations] == [(256, 16, 16), (512, 8, 8), (1024, 4, 4),
                                                                (1024, 2, 2)]  # D-7 paper: block outputs
    with pytest.raises(ValueError, match="transitions, dense_blocks"):
        build_model("densenet121", init="random", targets="norm5")


def test_bad_init_is_rejected():
    with pytest.raises(ValueError, match="imagenet, random"):
        build_model("resnet18", init="places365")


@pytest.mark.parametrize("name", sorted(WEIGHTS))
def test_the_catalogue_fetches_the_file_torchvision_reads(name):
    from pathlib import Path

    from torchvision import models

    from repro.data.download.catalogue import entry

    expected = Path(getattr(models, WEIGHTS[name]).IMAGENET1K_V1.url).name
    assert entry(f"{name}_imagenet").target(entry(f"{name}_imagenet").sources[0], None).name == expected
