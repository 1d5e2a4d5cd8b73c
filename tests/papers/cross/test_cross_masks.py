"""The mask derivations of `repro cross` on hand-made images."""

from __future__ import annotations

import torch

from repro.papers.cross.masks import (avoid_from_look, corner_square, digit_look, dilate, keep_look,
                                      square_digit_look, tag_band_look)


def _img(rows: list[str]) -> torch.Tensor:
    """A (1, 1, H, W) float image from rows of '.' (0), '#' (1) and digits (their value)."""
    values = [[0.0 if c == "." else 1.0 if c == "#" else float(c) for c in row] for row in rows]
    return torch.tensor(values).view(1, 1, len(rows), len(rows[0]))


def test_avoid_is_every_pixel_not_exactly_in_the_roi():
    look = _img(["....", ".##.", ".##.", "...."])
    look[0, 0, 2, 2] = 0.5  # a soft edge, as actdiff's penalties read it: outside
    avoid = avoid_from_look(look)
    assert avoid.tolist() == _img(["####", "#..#", "#.##", "####"]).tolist()
    assert torch.equal(avoid_from_look(avoid_from_look(look)), (look == 1).float())


def test_dilate_is_a_square_of_the_radius():
    seed = _img([".....", ".....", "..#..", ".....", "....."])
    assert dilate(seed, 1).tolist() == _img([".....", ".###.", ".###.", ".###.", "....."]).tolist()
    assert dilate(seed, 0).tolist() == seed.tolist()
    assert dilate(seed, 2).sum() == 25


def test_digit_look_is_the_dilated_digit_less_the_decoy():
    images = torch.tensor([[0, 0, 0, 0, 0, 0],
                           [0, 0, 0, 0, 0, 0],
                           [0, 0, 0, 0, 0, 0],
                           [0, 0, 0, 90, 0, 0],
                           [0, 0, 0, 0, 200, 200],
                           [0, 0, 0, 0, 200, 200]], dtype=torch.uint8).view(1, 1, 6, 6)
    patch = _img(["......", "......", "......", "......", "....##", "....##"])
    look = digit_look(images, patch, radius=1)
    assert look.tolist() == _img(["......", "......", "..###.", "..###.", "..##..", "......"]).tolist()
    assert look.tolist() == digit_look(images.float(), patch, radius=1).tolist()  # any dtype


def test_tag_band_look_is_every_row_the_tag_box_does_not_touch():
    boxes = torch.cat([_img(["......", "......", "......", "......", "....##", "....##"]),
                       _img(["##....", "......", "......", "......", "......", "......"])]).bool()
    look = tag_band_look(boxes)
    assert look.dtype == torch.bool and look.shape == boxes.shape  # the annotation's dtype
    assert look.float().tolist() == torch.cat([_img(["######", "######", "######", "######", "......", "......"]),
                                               _img(["......", "######", "######", "######", "######", "######"])
                                               ]).tolist()
    assert not bool((look & boxes).any())
    assert torch.equal(tag_band_look(boxes.float()), look.float())


def test_keep_look_zeroes_outside_in_the_images_dtype():
    images = torch.full((1, 1, 2, 2), 7, dtype=torch.uint8)
    look = _img(["#.", ".5"])  # 5: not exactly 1, so outside
    kept = keep_look(images, look)
    assert kept.dtype == torch.uint8 and kept.tolist() == [[[[7, 0], [0, 0]]]]


def test_corner_square_marks_the_square_region_on_every_image():
    images = torch.zeros(2, 3, 5, 5)
    images[0, 0, :2, :2] = 1  # the first image squared (red), the second not: both get the region
    square = _img(["##...", "##...", ".....", ".....", "....."])
    assert corner_square(images, side=2).tolist() == torch.cat([square, square]).tolist()


def test_square_digit_look_is_the_dilated_digit_outside_the_square_region():
    images = torch.zeros(1, 3, 6, 6)
    images[0, 0, :2, :2] = 1.0  # the red square: never the digit
    images[0, :, 2, 2] = 0.5  # a grey digit pixel, next to the square region
    images[0, 1, 5, 5] = 0.2  # a pixel above 0 in one channel only: the digit too
    look = square_digit_look(images, side=2, radius=1)
    assert look.tolist() == _img(["......", "..##..", ".###..", ".###..", "....##", "....##"]).tolist()
    assert float((look * corner_square(images, side=2)).sum()) == 0
