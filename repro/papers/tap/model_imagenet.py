"""torchvision VGG-16, ResNet-18 and DenseNet-121 with the TAP paper's heads and targeted layers
(tap spec §3.2): `activations` holds the targeted layers, shallow to deep, when `record` is set."""

from __future__ import annotations

from itertools import pairwise

from torch import nn

from repro.models import register_model
from repro.papers.tap.model_tap_cnn import StagedNet

INITS = ("imagenet", "random")
WEIGHTS = {"vgg16": "VGG16_Weights", "resnet18": "ResNet18_Weights", "densenet121": "DenseNet121_Weights"}


RANDOM_FALLBACK = ("Alternatively pass `--init random` to train from random init (not paper-faithful: the paper "
                   "fine-tunes ImageNet weights).")


def torchvision_model(name: str, init: str) -> nn.Module:
    """torchvision's `name` with IMAGENET1K_V1 weights (= DEFAULT for all three) or random init. The weight file is
    fetched and verified through `repro.models.weights` (catalogue entry `<name>_imagenet`) into torch hub's
    checkpoints folder, where torchvision then finds it (MissingWeights, exit 2, when it cannot be fetched)."""
    from torchvision import models

    from repro.models.weights import weight_file

    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, not {init!r}")
    build = getattr(models, name)
    if init == "random":
        return build(weights=None)
    weight_file(f"{name}_imagenet", fallback=RANDOM_FALLBACK)
    return build(weights=getattr(models, WEIGHTS[name]).IMAGENET1K_V1)


@register_model("vgg16")
def vgg16(num_classes: int = 2, init: str = "imagenet", layers: int = 5) -> StagedNet:
    """Targets the output of each MaxPool (post-ReLU): 64x112, 128x56, 256x28, 512x14, 512x7 at 224 px.
    `layers=4` is the code's `vgg16_4_activations`, which drops the first (D-6; default 5 as the paper)."""
    if layers not in (4, 5):
        raise ValueError(f"vgg16 targets 4 or 5 layers, not {layers}")
    f = torchvision_model("vgg16", init).features
    cuts = (0, 5, 10, 17, 24, 31) if layers == 5 else (0, 10, 17, 24, 31)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(7), nn.Flatten(), nn.Linear(25088, 1024), nn.ReLU(True),
                         nn.Dropout(0.5), nn.Linear(1024, num_classes))  # §3.2 replaced classifier, no BN
    return StagedNet([f[a:b] for a, b in pairwise(cuts)], head)


@register_model("resnet18")
def resnet18(num_classes: int = 2, init: str = "imagenet") -> StagedNet:
    """Targets the outputs of layer1..layer4 (post-ReLU): 64x56, 128x28, 256x14, 512x7 at 224 px."""
    m = torchvision_model("resnet18", init)
    stem = nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1)
    head = nn.Sequential(m.avgpool, nn.Flatten(), nn.Linear(512, num_classes))
    return StagedNet([stem, m.layer2, m.layer3, m.layer4], head)


DENSENET_TARGETS = ("transitions", "dense_blocks")


@register_model("densenet121")
def densenet121(num_classes: int = 2, init: str = "imagenet", targets: str = "transitions") -> StagedNet:
    """The dispatch the released code lacks (D-8), built as spec §3.2 describes the unreleased model.

    `targets="transitions"` (D-7, code): transition1..3 outputs (pre-activation, can be negative) 128x28,
    256x14, 512x7 and norm5 after ReLU 1024x7 (the code ReLUs norm5's output in place, so its act4 is
    post-ReLU). `"dense_blocks"` (paper text): the outputs of denseblock1..4, 256x56, 512x28, 1024x14 and
    1024x7, with norm5 and its ReLU moved into the head. The forward (logits) is the same for both."""
    if targets not in DENSENET_TARGETS:
        raise ValueError(f"densenet121 targets must be one of {', '.join(DENSENET_TARGETS)}, not {targets!r}")
    f = torchvision_model("densenet121", init).features
    pool = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, num_classes)]
    if targets == "transitions":
        stages = [nn.Sequential(f.conv0, f.norm0, f.relu0, f.pool0, f.denseblock1, f.transition1),
                  nn.Sequential(f.denseblock2, f.transition2),
                  nn.Sequential(f.denseblock3, f.transition3),
                  nn.Sequential(f.denseblock4, f.norm5, nn.ReLU())]
        return StagedNet(stages, nn.Sequential(*pool))
    stages = [nn.Sequential(f.conv0, f.norm0, f.relu0, f.pool0, f.denseblock1),
              nn.Sequential(f.transition1, f.denseblock2),
              nn.Sequential(f.transition2, f.denseblock3),
              nn.Sequential(f.transition3, f.denseblock4)]
    return StagedNet(stages, nn.Sequential(f.norm5, nn.ReLU(), *pool))
