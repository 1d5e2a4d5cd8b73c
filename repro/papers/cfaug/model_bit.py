"""BiT ResNet-v2 50x1 and the smoke profile's tiny ResNet-v2 (cfaug spec §4, C-1, C-25), built with timm.

Both return `(logits [B, C], None)`. The body is timm's pre-activation ResNet-v2 (weight-standardised convs,
GroupNorm, fixed-padding stem, GN -> ReLU -> average pool -> 1x1 conv head)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from torch import Tensor, nn

from repro.models import register_model
from repro.models.weights import MissingWeights, weight_file

BIT_S_FILE = "BiT-S-R50x1.npz"
TIMM_NAME = "resnetv2_50x1_bit"
HEAD_INITS = ("default", "zero")


class BiT(nn.Module):
    """A timm ResNetV2 (`net`) with the repro model interface: `forward(x) -> (logits, None)`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        return self.net(x), None


def bit_s_path(data_root: str | Path) -> Path:
    """Where the BiT-S-R50x1 npz is looked for: `<data root>/models/BiT-S-R50x1.npz` (spec §3.0)."""
    return Path(data_root) / "models" / BIT_S_FILE


BIT_S_NOTE = ("Waterbirds and CCT always start from the BiT-S-R50x1 weights; IN-9 needs them only under --switch "
              "C-1=bit_s (its default is random init; `repro cfaug switches` lists C-1).")


def fetch_bit_s(path: str | Path) -> Path:
    """`path` if it exists; else, where `path` is `<data root>/models/BiT-S-R50x1.npz`, the npz fetched there
    through `repro.models.weights` (catalogue entry bit_s_r50x1); MissingWeights when it cannot be."""
    path = Path(path)
    if path.exists():
        return path
    if path != bit_s_path(path.parent.parent):
        raise MissingWeights(f"{path}: no such BiT-S weights file; pass the path of {BIT_S_FILE}, or put it at "
                             f"<data root>/models/{BIT_S_FILE} (`repro data download bit_s_r50x1`). {BIT_S_NOTE}")
    return weight_file("bit_s_r50x1", path.parent.parent, fallback=BIT_S_NOTE)


def init_head(net: nn.Module, head_init: str) -> None:
    """Re-initialise the 1x1 conv head: PyTorch's default conv init (IN-9, WB) or all zeros (CCT), spec C-25."""
    if head_init not in HEAD_INITS:
        raise ValueError(f"head_init must be one of {', '.join(HEAD_INITS)}, not {head_init!r}")
    fc = net.head.fc
    if head_init == "zero":
        nn.init.zeros_(fc.weight)
        nn.init.zeros_(fc.bias)
    else:
        fc.reset_parameters()


def _check_init(init: str) -> None:
    if init not in ("bit_s", "random") and not init.startswith("timm:"):
        raise ValueError(f"init must be bit_s, random or timm:<tag>, not {init!r}")


def _timm_pretrained(tag: str, num_classes: int) -> nn.Module:
    import timm

    tags = [name.split(".", 1)[1] for name in timm.list_pretrained(f"{TIMM_NAME}.*")]
    if tag not in tags:
        raise ValueError(f"unknown timm tag {tag!r} for {TIMM_NAME}; known: {', '.join(tags)}")
    try:
        return timm.create_model(f"{TIMM_NAME}.{tag}", pretrained=True, num_classes=num_classes)
    except Exception as e:  # offline hub download
        raise MissingWeights(f"Could not load timm's {TIMM_NAME}.{tag} weights from the Hugging Face hub "
                             f"({type(e).__name__}: {e}); they are ImageNet-21k-derived, not BiT-S, "
                             f"so prefer init=bit_s with {BIT_S_FILE}.") from e


@register_model("bit_r50x1")
def bit_r50x1(num_classes: int = 2, init: str = "bit_s", weights: str | Path | None = None,
              head_init: str = "default") -> BiT:
    """BiT-R50x1 with a C-class head. `init`: "bit_s" loads the official npz at `weights` (resolve the default
    with `bit_s_path`; downloaded when absent), "random" keeps timm's random init (the project's
    word for no pretrained weights, so `repro.engine.load_weights` rebuilds it without a download), "timm:<tag>" loads a timm hub
    checkpoint (a flagged deviation: ImageNet-21k-derived). The pretrained head is never kept."""
    import timm

    _check_init(init)
    if init.startswith("timm:"):
        net = _timm_pretrained(init.removeprefix("timm:"), num_classes)
    else:
        net = timm.create_model(TIMM_NAME, pretrained=False, num_classes=num_classes)
        if init == "bit_s":
            if weights is None:
                raise ValueError(f"init='bit_s' needs weights=<path of {BIT_S_FILE}> (default: bit_s_path(data_root))")
            net.load_pretrained(str(fetch_bit_s(weights)))
    init_head(net, head_init)
    return BiT(net)


@register_model("bit_tiny")
def bit_tiny(num_classes: int = 2, head_init: str = "default", init: str = "random") -> BiT:
    """The smoke profile's ResNet-v2 (spec §9): the same pre-activation bottleneck, weight-standardised convs
    and GroupNorm (4 groups), stem width 8, one unit per stage (bottleneck widths 8/16/32/64). Always random
    init: `init` is accepted (and checked) so that one run config drives both models, but no tiny weights exist."""
    from timm.layers import GroupNormAct, StdConv2d
    from timm.models.resnetv2 import ResNetV2

    _check_init(init)
    net = ResNetV2(layers=[1, 1, 1, 1], channels=(32, 64, 128, 256), num_classes=num_classes, stem_chs=8,
                   stem_type="fixed", conv_layer=partial(StdConv2d, eps=1e-8),
                   norm_layer=partial(GroupNormAct, num_groups=4))
    init_head(net, head_init)
    return BiT(net)
