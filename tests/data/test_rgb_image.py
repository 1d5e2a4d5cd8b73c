"""Opening an image file as 8-bit RGB, and a file that cannot be decoded as a clear error."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from repro.data.image_sets import DatasetError
from repro.data.rgb_image import open_rgb


def test_open_rgb(tmp_path):
    Image.new("L", (7, 5), 90).save(tmp_path / "grey.png")
    image = open_rgb(tmp_path / "grey.png")
    assert image.mode == "RGB" and image.size == (7, 5) and image.getpixel((0, 0)) == (90, 90, 90)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    for name in ("broken.jpg", "absent.jpg"):
        with pytest.raises(DatasetError, match=f"cannot decode the image {re.escape(str(tmp_path / name))}"):
            open_rgb(tmp_path / name)
