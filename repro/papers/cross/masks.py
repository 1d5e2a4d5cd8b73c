"""The masks each method family needs, derived from a benchmark's own annotation (issue 29, item 3).

The home papers annotate in opposite conventions:
- AVOID (TAP, RRR, RBR: `repro.papers.tap.penalty_tap`): 1 on the spurious region the model must not use (decoy
  MNIST's patch);
- LOOK (Actdiff, Gradmask, Classify Masked: `repro.methods.StepContext.outside`): 1 on the region of interest, every
  pixel where the mask is not exactly 1 is outside (the synth2 crosses, dilated).

Biased MNIST (MaskTune's) has no annotation: its masks are derived from each batch of model inputs (`corner_square`,
`square_digit_look`). Each function takes and returns (N, 1, H, W) masks in {0, 1}: float, or the annotation's dtype
where it says so.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from repro.papers.masktune.data_biased_mnist import SQUARE

ROI_RADIUS = 2  # actdiff's ROI dilation on synth2: radius int(4 * blur + 0.5) at blur 0.5 (actdiff spec §5.4)


def avoid_from_look(look: Tensor) -> Tensor:
    """AVOID from LOOK: every pixel outside the region of interest (where LOOK is not exactly 1, as actdiff's
    penalties read it), so a soft ROI edge counts as a region to avoid."""
    return (look != 1).float()


def dilate(mask: Tensor, radius: int) -> Tensor:
    """Square (Chebyshev) dilation of a binary (N, 1, H, W) mask by `radius` pixels."""
    if radius == 0:
        return (mask > 0).float()
    return F.max_pool2d((mask > 0).float(), 2 * radius + 1, stride=1, padding=radius)


def digit_look(images: Tensor, avoid: Tensor, radius: int = ROI_RADIUS) -> Tensor:
    """LOOK for a digit image with a decoy: the digit's pixels (intensity above 0, outside the decoy), dilated by
    `radius` as actdiff dilates its crosses, less the decoy region itself. `images` (N, 1, H, W) of any dtype,
    `avoid` the decoy mask (1 on the patch)."""
    decoy = avoid > 0
    digit = (images > 0) & ~decoy
    return dilate(digit.float(), radius) * (~decoy).float()


def tag_band_look(avoid: Tensor) -> Tensor:
    """LOOK for an image whose spurious signal is a corner tag and whose data annotate no region of interest (TAP's
    PNEU and KNEE): every row that the tag box (`avoid`, 1 on the box) does not touch, across the full width. The
    band of the tag's rows holds besides the tag only the image's top or bottom edge (neck or abdomen, femur or tibia
    shaft), and it is a full-width background strip, as cfaug's Tile infill needs one (the box alone spans no full
    row or column, so Tile would infill blank images). In `avoid`'s dtype (the x-ray boxes are bool: a float copy
    would be 4 times larger at 224 px)."""
    return (~avoid.bool().any(-1, keepdim=True)).expand_as(avoid).to(avoid.dtype).contiguous()


def corner_square(images: Tensor, side: int = SQUARE) -> Tensor:
    """AVOID for biased MNIST: the `side` x `side` top-left square region on EVERY image of the (N, C, H, W) batch,
    squared or not (its absence informs too: an unsquared training image is almost always class 1)."""
    n, _, h, w = images.shape
    mask = torch.zeros((n, 1, h, w), device=images.device)
    mask[..., :side, :side] = 1
    return mask


def square_digit_look(images: Tensor, side: int = SQUARE, radius: int = ROI_RADIUS) -> Tensor:
    """LOOK for biased MNIST: `digit_look` with the square region as the decoy, the digit being every pixel above 0
    in any channel (the grey digit on black, three equal channels) outside that region."""
    return digit_look(images.amax(1, keepdim=True), corner_square(images, side), radius)


def keep_look(images: Tensor, look: Tensor) -> Tensor:
    """Classify Masked's training inputs: the images with every pixel outside LOOK set to 0, in their own dtype."""
    return (images * (look == 1)).to(images.dtype)


MASKS = {  # what each derivation shows a method, in the words the tables print
    "patch": "the decoy patch (AVOID; TAP's own annotation)",
    "digit": f"the digit (LOOK): pixels above 0 outside the patch, dilated by {ROI_RADIUS} px, less the patch",
    "roi": "the crosses dilated (LOOK; actdiff's own annotation)",
    "not_roi": "everything outside the dilated crosses (AVOID = 1 - LOOK), the box included",
    "tag": "the tag box (AVOID; TAP's own annotation: 22 x 44 px at 224 px, max-pooled where images are smaller)",
    "tag_band": "every row outside the tag box's rows, full width (LOOK: the data annotate no region of interest)",
    "square": f"the {SQUARE}x{SQUARE} top-left square region of every image, squared or not (AVOID)",
    "square_digit": f"the digit (LOOK): pixels above 0 outside the square region, dilated by {ROI_RADIUS} px, less "
                    "that region",
    "none": "none",
    "masktune": "none (its own XGradCAM masks)",
    "randmask": "none (random squares)",
}

