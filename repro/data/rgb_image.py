"""Opening an image file as the 8-bit RGB picture the file-backed readers hand to their transforms."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from repro.data.image_mode import to_8bit
from repro.data.image_sets import DatasetError


def open_rgb(path: Path) -> Image.Image:
    """The decoded image at `path` as 8-bit RGB (`to_8bit`), or a DatasetError naming the file."""
    try:
        with Image.open(path) as image:
            return to_8bit(image, "RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"cannot decode the image {path}: {e}") from e
