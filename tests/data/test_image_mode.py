"""`to_8bit` / `deep_grey`: deep grey scaled by its white level, every 8-bit mode as PIL's own convert."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from repro.data.image_mode import deep_grey, to_8bit

GREY = np.arange(256, dtype=np.uint16).reshape(16, 16)  # every 8-bit level once


def _deep(mode: str, values: np.ndarray) -> Image.Image:
    if mode in ("I;16B", "I;16L"):
        return Image.frombytes(mode, (16, 16), values.astype(">u2" if mode == "I;16B" else "<u2").tobytes())
    return Image.fromarray(values.astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]))


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I", "F"])
@pytest.mark.parametrize("widen", [257, 256], ids=["x257", "x256"])
def test_deep_grey_gives_the_8bit_picture_back(mode, widen):
    image = _deep(mode, GREY * widen)
    assert image.mode == mode
    np.testing.assert_array_equal(np.asarray(to_8bit(image, "L")), GREY)
    np.testing.assert_array_equal(np.asarray(to_8bit(image, "RGB")), np.repeat(GREY[..., None], 3, -1))
    assert deep_grey(image)[1] == 65535


def test_sixteen_bit_keeps_the_high_byte():
    values = np.array([[0, 255, 256, 32767, 32768, 65279, 65280, 65535]], np.uint16)
    assert np.asarray(to_8bit(Image.fromarray(values), "L")).tolist() == [[0, 0, 1, 127, 128, 254, 255, 255]]


def test_unit_float_scales_by_255():
    image = Image.fromarray((GREY / 255).astype(np.float32))
    assert deep_grey(image)[1] == 1.0
    np.testing.assert_array_equal(np.asarray(to_8bit(image, "L")), GREY)


@pytest.mark.parametrize("mode, value", [("I", -1), ("I", 65536), ("F", -0.5), ("F", 70000.0), ("F", np.nan)])
def test_values_of_no_known_depth_are_refused(mode, value):
    values = GREY.astype(np.float64)
    values[0, 0] = value
    with pytest.raises(ValueError, match="fits no known bit depth"):
        to_8bit(_deep(mode, values))


def _cmyk_jpeg() -> Image.Image:
    buf = io.BytesIO()
    Image.fromarray(np.stack([GREY, GREY.T, 255 - GREY], -1).astype(np.uint8)).convert("CMYK").save(buf, "JPEG")
    return Image.open(buf)


EIGHT_BIT = {
    "1": lambda rgb: rgb.convert("1"), "L": lambda rgb: rgb.convert("L"), "LA": lambda rgb: rgb.convert("LA"),
    "P": lambda rgb: rgb.convert("P"), "PA": lambda rgb: rgb.convert("PA"), "RGB": lambda rgb: rgb,
    "RGBA": lambda rgb: rgb.convert("RGBA"), "CMYK": lambda rgb: rgb.convert("CMYK"),
    "YCbCr": lambda rgb: rgb.convert("YCbCr"), "HSV": lambda rgb: rgb.convert("HSV"),
    "CMYK JPEG": lambda rgb: _cmyk_jpeg(),
}


@pytest.mark.parametrize("name", EIGHT_BIT)
@pytest.mark.parametrize("target", ["L", "RGB"])
def test_eight_bit_modes_are_pil_convert(name, target):
    image = EIGHT_BIT[name](Image.fromarray(np.stack([GREY, GREY.T, 255 - GREY], -1).astype(np.uint8)))
    assert deep_grey(image) is None
    out = to_8bit(image, target)
    assert out.mode == target and out is not image
    assert out.tobytes() == image.convert(target).tobytes()


def test_adobe_cmyk_jpeg_is_read_as_pil_reads_it():
    image = _cmyk_jpeg()
    assert image.info.get("adobe") is not None  # Pillow writes Adobe's inverted CMYK; it undoes that on read
    rgb = np.stack([GREY, GREY.T, 255 - GREY], -1).astype(int)
    assert np.abs(np.asarray(to_8bit(image)).astype(int) - rgb).max() <= 8  # JPEG at quality 75


def test_unconvertible_mode_and_target_are_errors():
    assert np.asarray(to_8bit(Image.new("LAB", (1, 1), (128, 128, 128))))[0, 0].tolist() == [119, 119, 119]
    with pytest.raises(ValueError, match="LAB"):  # PIL converts LAB to RGB only
        to_8bit(Image.new("LAB", (1, 1)), "L")
    with pytest.raises(ValueError, match="target mode"):
        to_8bit(Image.new("L", (2, 2)), "P")
