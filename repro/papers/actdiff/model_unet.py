"""The actdiff UNet family in one class: CNN (encoder only), Conv AE, UNet (actdiff spec §3.1)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.models import register_model

Mode = Literal["cnn", "ae", "unet"]


class DoubleConv(nn.Module):
    """conv3x3 -> ReLU -> conv3x3 -> ReLU, with bias, no normalisation."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)

    def forward(self, x: Tensor, record: list[Tensor] | None, pre_relu: bool) -> Tensor:
        for conv in (self.conv1, self.conv2):
            z = conv(x)
            x = F.relu(z, inplace=not pre_relu)  # in place as in the code, unless z must survive
            if record is not None:
                # The code stores z, which its in-place ReLU then overwrites: effectively post-ReLU.
                record.append(z if pre_relu else x)
        return x


class UNet(nn.Module):
    """Encoder of 4 DoubleConv blocks (nc, 2nc, 4nc, 8nc) with 2x2 max-pooling, a linear classifier on the
    flattened bottleneck and, in modes `ae`/`unet`, a bilinear decoder (with skips for `unet`)."""

    def __init__(self, mode: Mode, img_size: int = 28, nc: int = 16, normrecon: bool = True,
                 act_point: Literal["post_relu", "pre_relu"] = "post_relu"):
        super().__init__()
        if mode not in ("cnn", "ae", "unet") or act_point not in ("post_relu", "pre_relu"):
            raise ValueError(f"UNet mode {mode!r} / act_point {act_point!r} not supported")
        self.mode, self.normrecon, self.pre_relu = mode, normrecon, act_point == "pre_relu"
        self.sizes = [img_size, img_size // 2, img_size // 4, img_size // 8]
        self.enc = nn.ModuleList([DoubleConv(1, nc), DoubleConv(nc, 2 * nc), DoubleConv(2 * nc, 4 * nc),
                                  DoubleConv(4 * nc, 8 * nc)])
        self.fc = nn.Linear(8 * nc * self.sizes[3] ** 2, 2)
        if mode != "cnn":
            skip = mode == "unet"
            self.dec = nn.ModuleList([DoubleConv(8 * nc + (4 * nc if skip else 0), 4 * nc),
                                      DoubleConv(4 * nc + (2 * nc if skip else 0), 2 * nc),
                                      DoubleConv(2 * nc + (nc if skip else 0), nc)])
            self.out = nn.Conv2d(nc, 1, 1)
        self.record = False
        self.activations: list[Tensor] = []

    @property
    def cam_layer(self) -> nn.Module:
        """The layer whose output XGradCAM reads (the cross study's MaskTune masks): the encoder's last block, its
        output post-ReLU (a forward hook on its inner conv would see the in-place ReLU overwrite it). A property,
        so the state dict is unchanged."""
        return self.enc[-1]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        acts: list[Tensor] | None = [] if self.record else None
        skips = []
        for i, block in enumerate(self.enc):
            x = block(F.max_pool2d(x, 2) if i else x, acts, self.pre_relu)
            skips.append(x)
        self.activations = acts or []
        logits = self.fc(x.flatten(1))
        if self.mode == "cnn":
            return logits, None
        for block, size, skip in zip(self.dec, self.sizes[2::-1], skips[2::-1]):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)
            if self.mode == "unet":
                x = torch.cat([x, skip], dim=1)
            x = block(x, None, False)
        recon = self.out(x)
        return logits, torch.sigmoid(recon) if self.normrecon else recon


@register_model("cnn")
def cnn(**kw) -> UNet:
    """UNet family in mode 'cnn' (kwargs: img_size, nc, normrecon, act_point)."""
    return UNet("cnn", **kw)


@register_model("conv_ae")
def conv_ae(**kw) -> UNet:
    """UNet family in mode 'ae' (kwargs: img_size, nc, normrecon, act_point)."""
    return UNet("ae", **kw)


@register_model("unet")
def unet(**kw) -> UNet:
    """UNet family in mode 'unet' (kwargs: img_size, nc, normrecon, act_point)."""
    return UNet("unet", **kw)
