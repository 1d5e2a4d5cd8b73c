"""MaskTune's classifiers (masktune spec §3): SmallCNN (biased MNIST), the CIFAR ResNet-32 (option-A
shortcuts; CIFAR-10, SVHN, Cats vs Dogs) and timm's ResNet-50 (CelebA, Waterbirds, IN-9L).

Each returns `(logits, None)` like every `repro` model and names its XGradCAM target layer in `cam_layer`.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.models import register_model
from repro.models.weights import MissingWeights, weight_file

INITS = ("imagenet", "random")


class CamNet(nn.Module):
    """A backbone, a head, and the layer whose output XGradCAM reads."""

    def __init__(self, net: nn.Module, cam_layer: nn.Module):
        super().__init__()
        self.net = net
        self.cam_layer = cam_layer

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        return self.net(x), None


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3), nn.BatchNorm2d(c_out), nn.ReLU()]


class SmallCnn(CamNet):
    """SmallCNN: with `record` set, the output of each conv block (its max-pool) is kept in `activations`, shallow
    to deep, in a fresh list (the activation penalties' targets, as TAP targets its CNN's pooled stage outputs and
    VGG's max-pools). Recording adds no module: the state dict and the outputs are SmallCNN's."""

    def __init__(self, backbone: nn.Sequential, head: nn.Sequential):
        super().__init__(nn.Sequential(backbone, head), backbone[-3])
        self.record = False
        self.activations: list[Tensor] = []

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        backbone, head = self.net
        acts = []
        for layer in backbone:
            x = layer(x)
            if isinstance(layer, nn.MaxPool2d):
                acts.append(x)
        self.activations = acts if self.record else []
        return head(x), None


@register_model("smallcnn")
def smallcnn(num_classes: int = 2) -> SmallCnn:
    """Four 3x3 unpadded convs with BN (§3.1); CAM target: the ReLU after the 4th conv (32x8x8 at 28 px); recorded
    activations: the two blocks' max-pool outputs (16x12x12, 32x4x4)."""
    backbone = nn.Sequential(*_conv_bn_relu(3, 16), *_conv_bn_relu(16, 16), nn.MaxPool2d(2, 2),
                             *_conv_bn_relu(16, 32), *_conv_bn_relu(32, 32), nn.MaxPool2d(2, 2), nn.Flatten())
    head = nn.Sequential(nn.Linear(512, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, num_classes))
    return SmallCnn(backbone, head)


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN + shortcut, ReLU; option A: subsample and zero-pad channels when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.pad = (c_out - c_in) // 2 if (stride != 1 or c_in != c_out) else None
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        short = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return self.relu(out + short)


class ResNet32(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        widths, c_in, stages = (16, 32, 64), 16, []
        for i, w in enumerate(widths):
            stages.append(nn.Sequential(*[BasicBlock(c_in if b == 0 else w, w, 2 if (b == 0 and i > 0) else 1)
                                          for b in range(5)]))
            c_in = w
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


@register_model("resnet32")
def resnet32(num_classes: int = 10) -> CamNet:
    """He et al.'s CIFAR ResNet-32 from scratch (§3.3), ~0.46M parameters; CAM target: layer3[-1]."""
    net = ResNet32(num_classes)
    return CamNet(net, net.layer3[-1])


def _load_ram(model: nn.Module) -> None:
    """The pinned `ram` weights (catalogue entry resnet50_ram: $REPRO_WEIGHTS or torch hub's checkpoints folder,
    fetched and verified there by `repro.models.weights` when missing), without the head."""
    path = weight_file("resnet50_ram", fallback="Alternatively pass `--init random` to train from random init (not "
                                                "paper-faithful).")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith("a26f946b"):  # a file put there by hand
        raise MissingWeights(f"{path}: sha256 {digest[:8]}... is not the pinned a26f946b...; move it away and run "
                             "`repro data download resnet50_ram`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}  # the head is re-initialised for K classes
    model.load_state_dict(state, strict=False)


@register_model("resnet50")
def resnet50(num_classes: int = 2, init: str = "imagenet") -> CamNet:
    """timm's resnet50 with a fresh K-class head (§3.2), from the pinned `ram` weights or random init;
    CAM target: layer4[-1]."""
    import timm

    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, not {init!r}")
    net = timm.create_model("resnet50", pretrained=False, num_classes=num_classes)
    if init == "imagenet":
        _load_ram(net)
    return CamNet(net, net.layer4[-1])
