"""cfaug image transforms (specs/cfaug.md §3.4, C-7) on PIL images, parametrised by the final size S (paper 224).

One geometry (resize, crop, flip) is drawn per sample and applied identically to the image, its mask, its CAGAN
infill and its bboxes. Boxes are (K, 4) int64 tensors of (x, y, w, h) in pixels.

preproc="code" (default, the released code):
- train, IN-9 / WB: squash-resize to R x R, R = round(S * 256 / 224) (256 at S = 224); CCT: shorter side S
  (aspect kept). Then an S x S random crop constrained to overlap a bbox, hflip p = 0.5. ColorJitter() is an
  identity and is left out.
- eval: squash-resize to S x S, no crop.
preproc="paper" (the text: "scales and center-crops to 224 with horizontal flipping"), read as the usual ImageNet
recipe: shorter side R, centre crop S x S for train and eval, plus hflip p = 0.5 in train. The fg may then be
cropped away, so `has_bbox` is taken from the transformed mask.

Masks are resized bilinearly like images, then ceiled and reduced with "any channel" to (1, S, S) in {0, 1}
(a slight dilation, as in the code). A sample without a mask image gets the union of its transformed boxes
(CCT), all zeros when it has none. Every output image is normalised with mean 0.5, std 0.5 into [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms import functional as TF

from repro.data.image_mode import to_8bit

PREPROCS = ("code", "paper")
ASPECTS = ("squash", "shorter")  # IN-9 and Waterbirds squash; CCT keeps its aspect (shorter side)


class Augmented(NamedTuple):
    """One transformed sample: x (3, S, S) in [-1, 1], mask (1, S, S) in {0, 1}, infill (3, S, S) or None,
    boxes (K, 4) in output pixels."""

    x: Tensor
    mask: Tensor
    infill: Tensor | None
    boxes: Tensor


def train_resize(size: int) -> int:
    """The pre-crop resize R of the code for final size S: round(S * 256 / 224)."""
    return round(size * 256 / 224)


def resize_bbox(boxes: Tensor, src: tuple[int, int], dst: tuple[int, int]) -> Tensor:
    """Boxes (x, y, w, h) in an image of size src = (W, H) mapped to size dst = (W', H') with the code's floor
    formula: x' = floor(x W'/W), w' = floor((x + w) W'/W) + 1 - x'; same for y, h (spec §3.3)."""
    b = boxes.to(torch.float64).reshape(-1, 4)
    new, old = torch.tensor(dst, dtype=torch.float64), torch.tensor(src, dtype=torch.float64)
    start = torch.floor(b[:, :2] * new / old)
    end = torch.floor((b[:, :2] + b[:, 2:]) * new / old) + 1
    return torch.cat([start, end - start], 1).to(torch.int64)


def crop_boxes(boxes: Tensor, top: int, left: int, height: int, width: int) -> Tensor:
    """Boxes shifted into a crop at (top, left) of the given size and clipped to it (empty ones keep w or h 0)."""
    x1 = (boxes[:, 0] - left).clamp(0, width)
    y1 = (boxes[:, 1] - top).clamp(0, height)
    x2 = (boxes[:, 0] + boxes[:, 2] - left).clamp(0, width)
    y2 = (boxes[:, 1] + boxes[:, 3] - top).clamp(0, height)
    return torch.stack([x1, y1, x2 - x1, y2 - y1], 1)


def hflip_boxes(boxes: Tensor, width: int) -> Tensor:
    """Boxes after a horizontal flip of an image `width` wide: x' = W - x - w."""
    out = boxes.clone()
    out[:, 0] = width - boxes[:, 0] - boxes[:, 2]
    return out


def box_mask(boxes: Tensor, height: int, width: int) -> Tensor:
    """(1, H, W) float mask, 1 inside the union of the boxes."""
    rows, cols = torch.arange(height), torch.arange(width)
    b = boxes.reshape(-1, 4)
    in_rows = (rows[None] >= b[:, 1:2]) & (rows[None] < b[:, 1:2] + b[:, 3:4])
    in_cols = (cols[None] >= b[:, 0:1]) & (cols[None] < b[:, 0:1] + b[:, 2:3])
    return (in_rows[:, :, None] & in_cols[:, None, :]).any(0, keepdim=True).float()


def mask_extent(mask: Tensor) -> Tensor:
    """(1, 4) box (x, y, w, h) enclosing the True pixels of a 2-D bool mask; (0, 4) when there are none."""
    rows, cols = torch.nonzero(mask.any(1)).flatten(), torch.nonzero(mask.any(0)).flatten()
    if not len(rows):
        return torch.zeros(0, 4, dtype=torch.int64)
    x, y = int(cols[0]), int(rows[0])
    return torch.tensor([[x, y, int(cols[-1]) - x + 1, int(rows[-1]) - y + 1]])


def _positive(boxes: Tensor) -> Tensor:
    return (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def _uniform(low: int, high: int, gen: torch.Generator) -> int:
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def constrained_crop(boxes: Tensor, height: int, width: int, size: int, gen: torch.Generator) -> tuple[int, int]:
    """Top-left (i, j) of a size x size crop overlapping at least one box (spec §3.4 step 2, the code's rule):
    with (x, y, w, h) the extent of the union of the boxes (clipped to the image), i ~ U[max(0, y - size + 1),
    min(y + h - 1, H - size)] (likewise j), re-drawn until some box keeps a non-zero width and height inside the
    crop. Without such a box: an ordinary uniform crop."""
    inside = crop_boxes(boxes, 0, 0, height, width)
    inside = inside[_positive(inside)]
    if not len(inside):
        return _uniform(0, height - size, gen), _uniform(0, width - size, gen)
    x, y = (int(v) for v in inside[:, :2].amin(0))
    x2, y2 = (int(v) for v in (inside[:, :2] + inside[:, 2:]).amax(0))
    lo_i, hi_i = max(0, y - size + 1), min(y2 - 1, height - size)
    lo_j, hi_j = max(0, x - size + 1), min(x2 - 1, width - size)
    while True:
        i, j = _uniform(lo_i, hi_i, gen), _uniform(lo_j, hi_j, gen)
        if bool(_positive(crop_boxes(boxes, i, j, size, size)).any()):
            return i, j


def _shorter_side(wh: tuple[int, int], side: int) -> tuple[int, int]:
    """(W', H') with the shorter side = `side`, the other int(side * long / short) (torchvision's Resize(int))."""
    w, h = wh
    return (side, int(side * h / w)) if w <= h else (int(side * w / h), side)


def _image_tensor(image: Image.Image) -> Tensor:
    return TF.to_tensor(to_8bit(image, "RGB")) * 2 - 1


def _mask_tensor(mask: Image.Image) -> Tensor:
    return TF.to_tensor(mask).ceil().amax(0, keepdim=True)


@dataclass(frozen=True)
class Geometry:
    """One drawn view: resize to `resized` (W', H'), crop size x size at (top, left), optional hflip."""

    resized: tuple[int, int]  # (W', H')
    top: int
    left: int
    size: int
    flip: bool

    def image(self, image: Image.Image) -> Image.Image:
        out = image.resize(self.resized, Image.BILINEAR).crop((self.left, self.top, self.left + self.size,
                                                                self.top + self.size))
        return out.transpose(Image.FLIP_LEFT_RIGHT) if self.flip else out

    def boxes(self, boxes: Tensor, src: tuple[int, int]) -> Tensor:
        out = crop_boxes(resize_bbox(boxes, src, self.resized), self.top, self.left, self.size, self.size)
        return hflip_boxes(out, self.size) if self.flip else out

    def apply(self, image: Image.Image, mask: Image.Image | None, infill: Image.Image | None,
              boxes: Tensor) -> Augmented:
        out_boxes = self.boxes(boxes, image.size)
        m = _mask_tensor(self.image(mask)) if mask is not None else box_mask(out_boxes, self.size, self.size)
        fill = None if infill is None else _image_tensor(self.image(infill.resize(image.size, Image.BILINEAR)))
        return Augmented(_image_tensor(self.image(image)), m, fill, out_boxes)


def _centre(resized: tuple[int, int], size: int) -> tuple[int, int]:
    return int(round((resized[1] - size) / 2)), int(round((resized[0] - size) / 2))


@dataclass(frozen=True)
class TrainTransform:
    """The train transform of one dataset family: `aspect` "squash" (IN-9, WB) or "shorter" (CCT)."""

    size: int = 224
    aspect: str = "squash"
    preproc: str = "code"

    def __post_init__(self) -> None:
        if self.aspect not in ASPECTS or self.preproc not in PREPROCS:
            raise ValueError(f"aspect must be one of {ASPECTS} and preproc one of {PREPROCS}, "
                             f"got {self.aspect!r}, {self.preproc!r}")

    def __call__(self, image: Image.Image, mask: Image.Image | None, infill: Image.Image | None,
                 boxes: Tensor, gen: torch.Generator) -> Augmented:
        """`mask` and `infill` (None when absent) share the image's pixel grid (the infill is resized to it if
        not); `boxes` (K, 4) are in image pixels; all draws come from `gen`."""
        boxes = boxes.reshape(-1, 4).to(torch.int64)
        big = train_resize(self.size)
        if self.preproc == "paper":
            resized = _shorter_side(image.size, big)
            top, left = _centre(resized, self.size)
        else:
            resized = (big, big) if self.aspect == "squash" else _shorter_side(image.size, self.size)
            top, left = constrained_crop(resize_bbox(boxes, image.size, resized), resized[1], resized[0],
                                         self.size, gen)
        flip = bool(torch.rand(1, generator=gen) < 0.5)
        return Geometry(resized, top, left, self.size, flip).apply(image, mask, infill, boxes)


@dataclass(frozen=True)
class EvalTransform:
    """The val/test transform: code = squash to S x S; paper = shorter side R, centre crop S."""

    size: int = 224
    preproc: str = "code"

    def __post_init__(self) -> None:
        if self.preproc not in PREPROCS:
            raise ValueError(f"preproc must be one of {PREPROCS}, got {self.preproc!r}")

    def __call__(self, image: Image.Image, mask: Image.Image | None = None,
                 boxes: Tensor | None = None) -> Augmented:
        """x, and the mask from `mask` or else from `boxes` (zeros when both are None)."""
        if self.preproc == "paper":
            resized = _shorter_side(image.size, train_resize(self.size))
            top, left = _centre(resized, self.size)
        else:
            resized, top, left = (self.size, self.size), 0, 0
        empty = torch.zeros(0, 4, dtype=torch.int64)
        return Geometry(resized, top, left, self.size, False).apply(
            image, mask, None, empty if boxes is None else boxes.reshape(-1, 4).to(torch.int64))
