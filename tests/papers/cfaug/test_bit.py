"""BiT ResNet-v2 models (cfaug spec §4, §10.15, C-25): parameter count, npz loading, head init, missing file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from repro.models import build_model
from repro.papers.cfaug.model_bit import BiT

PREFIX = "resnet/"


def _hwio(w: torch.Tensor) -> np.ndarray:
    """OIHW -> the npz's HWIO layout (the inverse of timm's loader transpose)."""
    return w.detach().numpy().transpose(2, 3, 1, 0)


def export_npz(net: nn.Module, path, prefix: str = PREFIX) -> None:
    """Write `net` (a timm ResNetV2) in the official BiT npz key layout, built from what timm's loader reads."""
    keys = {f"{prefix}root_block/standardized_conv2d/kernel": _hwio(net.stem.conv.weight),
            f"{prefix}group_norm/gamma": net.norm.weight.detach().numpy(),
            f"{prefix}group_norm/beta": net.norm.bias.detach().numpy(),
            f"{prefix}head/conv2d/kernel": _hwio(net.head.fc.weight),
            f"{prefix}head/conv2d/bias": net.head.fc.bias.detach().numpy()}
    for i, stage in enumerate(net.stages):
        for j, block in enumerate(stage.blocks):
            unit = f"{prefix}block{i + 1}/unit{j + 1:02d}/"
            for part, conv, norm in (("a", block.conv1, block.norm1), ("b", block.conv2, block.norm2),
                                     ("c", block.conv3, block.norm3)):
                keys[f"{unit}{part}/standardized_conv2d/kernel"] = _hwio(conv.weight)
                keys[f"{unit}{part}/group_norm/gamma"] = norm.weight.detach().numpy()
                keys[f"{unit}{part}/group_norm/beta"] = norm.bias.detach().numpy()
            if block.downsample is not None:
                keys[f"{unit}a/proj/standardized_conv2d/kernel"] = _hwio(block.downsample.conv.weight)
    np.savez(path, **keys)


@pytest.fixture(scope="module")
def source() -> BiT:
    torch.manual_seed(1)
    model = build_model("bit_r50x1", num_classes=5, init="random")
    with torch.no_grad():  # GN affine params away from their 1/0 init, so a skipped copy would show
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    return model


def _body(model: BiT) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.net.state_dict().items() if not k.startswith("head.")}


def test_bit_r50x1_parameter_count_and_forward(source):
    body = sum(v.numel() for v in _body(source).values())
    head = sum(p.numel() for p in source.net.head.parameters())
    assert 23.4e6 < body < 23.6e6 and body == 23_500_352
    assert head == 2048 * 5 + 5
    logits, extra = source(torch.randn(1, 3, 32, 32))
    assert logits.shape == (1, 5) and extra is None


@pytest.mark.parametrize("head_init", ["default", "zero"])
def test_npz_loads_every_body_tensor_and_reinitialises_the_head(source, tmp_path, head_init):
    path = tmp_path / "BiT-S-R50x1.npz"
    export_npz(source.net, path)
    torch.manual_seed(2)
    model = build_model("bit_r50x1", num_classes=5, init="bit_s", weights=path, head_init=head_init)
    loaded, want = _body(model), _body(source)
    assert loaded.keys() == want.keys()
    assert all(torch.equal(loaded[k], want[k]) for k in want), [k for k in want if not torch.equal(loaded[k], want[k])]
    fc = model.net.head.fc
    assert not torch.equal(fc.weight, source.net.head.fc.weight)  # the npz head (loaded by timm) was replaced
    if head_init == "zero":
        assert not fc.weight.any() and not fc.bias.any()
    else:  # PyTorch's default conv init: kaiming-uniform(a=sqrt 5) bound 1/sqrt(fan_in), not timm's N(0, 0.01)
        bound = 1 / 2048 ** 0.5
        assert fc.weight.abs().max() <= bound and fc.weight.std() > 0.5 * bound / 3 ** 0.5
        assert fc.bias.any()


@pytest.mark.parametrize("kwargs", [{"init": "bit_s"}, {"init": "imagenet"}, {"init": "timm:nope"},
                                    {"init": "random", "head_init": "normal"}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        build_model("bit_r50x1", num_classes=2, **kwargs)


@pytest.mark.parametrize("head_init", ["default", "zero"])
def test_bit_tiny(head_init):
    with pytest.raises(ValueError):
        build_model("bit_tiny", init="imagenet")
    torch.manual_seed(0)
    model = build_model("bit_tiny", num_classes=3, head_init=head_init, init="bit_s")  # the smoke config's init
    logits, extra = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 3) and extra is None
    assert (logits == 0).all() == (head_init == "zero")
    net = model.net
    assert len(net.stages) == 4 and all(len(s.blocks) == 1 for s in net.stages)
    assert net.stem.conv.out_channels == 8 and net.stages[0].blocks[0].conv1.out_channels == 8
    norms = [m for m in net.modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(m.num_channels % m.num_groups == 0 for m in norms)
    assert type(net.stages[0].blocks[0]).__name__ == "PreActBottleneck"
    assert type(net.stem.conv).__name__ == "StdConv2d"
