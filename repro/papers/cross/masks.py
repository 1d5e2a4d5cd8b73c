"""The masks each method family needs, derived from a benchmark's own annotation (issue 29, item 3).

The two home papers annotate in opposite conventions:
- AVOID (TAP, RRR, RBR: `repro.papers.tap.penalty_tap`): 1 on the spurious region the model must not use (decoy
  MNIST's patch);
- LOOK (Actdiff, Gradmask, Classify Masked: `repro.methods.StepContext.outside`): 1 on the region of interest, every
  pixel where the mask is not exactly 1 is outside (the synth2 crosses, dilated).

Each function takes and returns float (N, 1, H, W) masks in {0, 1}.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

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


def keep_look(images: Tensor, look: Tensor) -> Tensor:
    """Classify Masked's training inputs: the images with every pixel outside LOOK set to 0, in their own dtype."""
    return (images * (look == 1)).to(images.dtype)


MASKS = {  # what each derivation shows a method, in the words the tables print
    "patch": "the decoy patch (AVOID; TAP's own annotation)",
    "digit": f"the digit (LOOK): pixels above 0 outside the patch, dilated by {ROI_RADIUS} px, less the patch",
    "roi": "the crosses dilated (LOOK; actdiff's own annotation)",
    "not_roi": "everything outside the dilated crosses (AVOID = 1 - LOOK), the box included",
    "none": "none",
    "masktune": "none (its own XGradCAM masks)",
    "randmask": "none (random squares)",
}

