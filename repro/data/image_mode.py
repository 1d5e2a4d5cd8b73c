"""Every decoded image as the 8-bit grey or RGB picture a paper's pipeline reads (issue 25).

PIL's `convert("L")` / `convert("RGB")` clips the samples of a grey image deeper than 8 bits instead of
scaling them, so a 16-bit PNG turns almost white. Here such an image is scaled by its white level:

- 16-bit grey ("I;16", "I;16B", "I;16L", "I;16N") and 32-bit integer "I" (Pillow's mode for 16-bit PGM and
  TIFF files): white = 65535; "I" values outside 0..65535 have no known depth and are refused;
- float "F": white = 1.0 when every value lies in [0, 1], else treated as 16-bit like "I";
- 8-bit = the high byte, floor(v / 256) (for F in [0, 1]: round(255 v)). This is how Pillow itself reads
  16-bit RGB and grey-alpha PNGs and how libpng strips 16 bits, so a 16-bit grey, a 16-bit RGB and an 8-bit file
  of one picture give the same bytes (exactly for the usual 8-to-16-bit widenings v * 257 and v * 256).

Every other mode ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK" including Adobe's inverted JPEGs, "YCbCr",
"HSV", ...) holds 8-bit samples and goes through PIL's own `convert`: alpha is dropped, a palette is looked up,
and 8-bit files give the same bytes as before. A conversion PIL lacks (e.g. "LAB" to "L") raises its ValueError.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
DEEP_GREY = (*SIXTEEN_BIT, "I", "F")
"""Grey modes whose samples exceed 8 bits: PIL's convert clips them."""
WHITE_16 = 65535


def deep_grey(image: Image.Image) -> tuple[np.ndarray, float] | None:
    """(samples (H, W), white level) of a grey image deeper than 8 bits (`DEEP_GREY`), None for any other
    mode; a ValueError where the values fit no known depth (negative, above 65535, not finite)."""
    if image.mode not in DEEP_GREY:
        return None
    x = np.asarray(image)
    if image.mode in SIXTEEN_BIT:
        return x, WHITE_16
    low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if image.mode == "F" and 0 <= low and high <= 1:
        return x, 1.0
    if not (0 <= low and high <= WHITE_16):  # also catches NaN (every comparison is False)
        raise ValueError(f"mode {image.mode} image with values in [{low:g}, {high:g}] fits no known bit depth "
                         f"(expected 0..{WHITE_16}, or [0, 1] for floats)")
    return x, WHITE_16


def to_8bit(image: Image.Image, mode: str = "RGB") -> Image.Image:
    """A new, loaded 8-bit `mode` ("L" or "RGB") image of `image`: deep grey scaled by its white level (the
    module docstring has the rules), every other mode by PIL's `convert(mode)`."""
    if mode not in ("L", "RGB"):
        raise ValueError(f"target mode must be 'L' or 'RGB', not {mode!r}")
    deep = deep_grey(image)
    if deep is None:
        return image.convert(mode)
    x, white = deep
    grey = np.rint(x * 255.0) if white == 1.0 else x.astype(np.float64) // 256
    out = Image.fromarray(grey.astype(np.uint8))
    return out if mode == "L" else out.convert("RGB")
