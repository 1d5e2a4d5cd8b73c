"""CIFAR-style ResNet-18 with one input channel and a fixed 4x4 average pool (actdiff spec §3.2)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from repro.models import register_model


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus a (1x1 conv + BN when shape changes) shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor, record: list[Tensor] | None) -> Tensor:
        a1 = self.bn1(self.conv1(x))
        a2 = self.bn2(self.conv2(F.relu(a1))) + self.shortcut(x)
        if record is not None:
            record += [a1, a2]  # true pre-activations
        return F.relu(a2)


def _side(img_size: int) -> int:
    """Spatial side after the four stages (strides 1, 2, 2, 2; 3x3 convs with padding 1)."""
    for _ in range(3):
        img_size = (img_size - 1) // 2 + 1
    return img_size


class ResNetSmall(nn.Module):
    """Stem conv3x3(1->64)+BN+ReLU (no max-pool), stages of 2 BasicBlocks at widths 64-512,
    avg_pool2d(4) and a linear layer of `base_size` inputs (512 at 28 px, 4608 at 100, 8192 at 128)."""

    def __init__(self, img_size: int = 28, base_size: int | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        pooled = _side(img_size) // 4
        self.linear = nn.Linear(base_size or 512 * pooled * pooled, 2)
        self.record = False
        self.activations: list[Tensor] = []

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        acts: list[Tensor] | None = [] if self.record else None
        a = self.bn1(self.conv1(x))
        if acts is not None:
            acts.append(a)
        x = F.relu(a)
        for block in self.blocks:
            x = block(x, acts)
        self.activations = acts or []
        return self.linear(F.avg_pool2d(x, 4).flatten(1)), None


@register_model("resnet")
def resnet(**kw) -> ResNetSmall:
    """ResNetSmall (kwargs: img_size, base_size)."""
    return ResNetSmall(**kw)
