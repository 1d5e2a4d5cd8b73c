"""cfaug transforms (specs/cfaug.md §3.4, §10 item 9): alignment, constrained crop, flip, resize_bbox, eval."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from repro.papers.cfaug.transforms import (EvalTransform, Geometry, TrainTransform, box_mask, constrained_crop,
                                           crop_boxes, hflip_boxes, mask_extent, resize_bbox, train_resize)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _scene(w: int, h: int, box: tuple[int, int, int, int], seed: int = 0) -> tuple[Image.Image, Image.Image]:
    """A random RGB image and the binary RGB mask image of `box`."""
    rng = np.random.default_rng(seed)
    x, y, bw, bh = box
    m = np.zeros((h, w, 3), np.uint8)
    m[y:y + bh, x:x + bw] = 255
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)), Image.fromarray(m)


def test_train_resize_matches_the_code_at_224():
    assert train_resize(224) == 256 and train_resize(64) == 73 and train_resize(28) == 32


def test_resize_bbox_floor_formula():
    boxes = torch.tensor([[3, 5, 10, 7], [0, 0, 1, 1]])
    out = resize_bbox(boxes, (30, 20), (64, 48))
    x, y, w, h = boxes.double().unbind(1)
    want_x, want_y = torch.floor(x * 64 / 30), torch.floor(y * 48 / 20)
    want_w = torch.floor((x + w) * 64 / 30) + 1 - want_x
    want_h = torch.floor((y + h) * 48 / 20) + 1 - want_y
    assert out.tolist() == torch.stack([want_x, want_y, want_w, want_h], 1).long().tolist()
    assert out[0].tolist() == [6, 12, 22, 17]  # 3*64/30 = 6.4; 13*64/30 = 27.7 -> 27 + 1 - 6


def test_crop_and_hflip_boxes():
    boxes = torch.tensor([[2, 3, 10, 10], [40, 40, 5, 5]])
    cropped = crop_boxes(boxes, top=5, left=4, height=8, width=8)
    assert cropped.tolist() == [[0, 0, 8, 8], [8, 8, 0, 0]]
    flipped = hflip_boxes(torch.tensor([[1, 2, 3, 4]]), width=10)
    assert flipped.tolist() == [[10 - 1 - 3, 2, 3, 4]]


def test_geometry_flip_mirrors_image_mask_infill_and_boxes():
    image, mask = _scene(40, 36, (5, 6, 9, 7))
    infill = image.transpose(Image.ROTATE_180)
    boxes = torch.tensor([[5, 6, 9, 7]])
    plain = Geometry((37, 37), 2, 3, 32, False).apply(image, mask, infill, boxes)
    flip = Geometry((37, 37), 2, 3, 32, True).apply(image, mask, infill, boxes)
    assert torch.equal(flip.x, plain.x.flip(-1)) and torch.equal(flip.mask, plain.mask.flip(-1))
    assert torch.equal(flip.infill, plain.infill.flip(-1))
    x, y, w, h = plain.boxes[0].tolist()
    assert flip.boxes[0].tolist() == [32 - x - w, y, w, h]
    from_boxes = Geometry((37, 37), 2, 3, 32, True).apply(image, None, None, boxes)
    assert torch.equal(from_boxes.mask, box_mask(flip.boxes, 32, 32))


@pytest.mark.parametrize("aspect,preproc", [("squash", "code"), ("shorter", "code"), ("squash", "paper")])
def test_image_mask_and_infill_get_the_same_crop_and_flip(aspect, preproc):
    """The image itself serves as infill and (binary) mask: all three must come out identical."""
    _, mask = _scene(48, 40, (20, 12, 12, 14))
    image = mask
    t = TrainTransform(28, aspect, preproc)
    for seed in range(12):
        out = t(image, mask, image, torch.tensor([[20, 12, 12, 14]]), _gen(seed))
        assert out.x.shape == (3, 28, 28) and out.mask.shape == (1, 28, 28) and out.infill.shape == (3, 28, 28)
        assert torch.equal(out.x, out.infill)
        assert torch.equal(out.mask[0] > 0, ((out.x + 1) / 2 > 0).any(0))


def test_constrained_crop_always_overlaps_a_box():
    image, mask = _scene(30, 30, (1, 24, 4, 4))
    box = torch.tensor([[1, 24, 4, 4], [0, 0, 0, 0]])  # the second box is degenerate: never enough
    t = TrainTransform(16, "squash", "code")  # resize 18 -> crop 16
    resized = resize_bbox(box, (30, 30), (18, 18))
    for seed in range(50):
        i, j = constrained_crop(resized, 18, 18, 16, _gen(seed))
        assert 0 <= i <= 2 and 0 <= j <= 2
        out = t(image, mask, None, box, _gen(seed))
        assert bool(((out.boxes[:, 2] > 0) & (out.boxes[:, 3] > 0)).any()) and out.mask.sum() > 0


def test_constrained_crop_range_follows_the_spec():
    box = torch.tensor([[200, 10, 20, 5]])
    tops, lefts = set(), set()
    for seed in range(300):
        i, j = constrained_crop(box, 256, 256, 224, _gen(seed))
        tops.add(i)
        lefts.add(j)
    assert tops <= set(range(0, 15)) and lefts <= set(range(0, 33))
    assert len(tops) > 10 and len(lefts) > 25  # uniform over the range, not a fixed crop


def test_constrained_crop_draws_over_the_union_of_the_boxes():
    """§3.4 (code): the range comes from the boxes' union, re-drawn until some box is inside, so every accepted
    crop is equally likely; drawing one box first would give the lone-position box A half the crops."""
    boxes = torch.tensor([[0, 0, 1, 1], [36, 36, 4, 4]])  # A: only crop (0, 0) holds it; B: 16 crops
    accepted = {(0, 0)} | {(i, j) for i in range(5, 9) for j in range(5, 9)}
    draws = [constrained_crop(boxes, 40, 40, 32, _gen(seed)) for seed in range(340)]
    assert set(draws) == accepted
    assert 0 < draws.count((0, 0)) < 0.15 * len(draws)  # ~1/17, not 1/2


def test_no_box_gives_an_ordinary_random_crop_and_zero_mask():
    image, _ = _scene(40, 40, (0, 0, 1, 1))
    t = TrainTransform(28)
    outs = [t(image, None, None, torch.zeros(0, 4), _gen(s)) for s in range(8)]
    assert all(o.mask.sum() == 0 for o in outs)
    assert len({o.x.sum().item() for o in outs}) > 1


def test_same_generator_state_same_output():
    image, mask = _scene(40, 32, (3, 3, 10, 10))
    t = TrainTransform(24)
    a = t(image, mask, None, torch.tensor([[3, 3, 10, 10]]), _gen(7))
    b = t(image, mask, None, torch.tensor([[3, 3, 10, 10]]), _gen(7))
    assert torch.equal(a.x, b.x) and torch.equal(a.mask, b.mask) and torch.equal(a.boxes, b.boxes)


def test_soft_mask_is_ceiled_and_any_channel():
    soft = np.zeros((20, 20, 3), np.uint8)
    soft[5:10, 5:10, 2] = 1  # faint, in one channel only
    out = EvalTransform(20)(Image.fromarray(soft), Image.fromarray(soft))
    assert out.mask.shape == (1, 20, 20)
    assert torch.equal(out.mask[0] > 0, torch.from_numpy(soft[..., 2] > 0))


@pytest.mark.parametrize("preproc", ["code", "paper"])
def test_eval_output_is_s_by_s_in_minus_one_one(preproc):
    halves = np.zeros((31, 57, 3), np.uint8)
    halves[:, 28:] = 255
    out = EvalTransform(24, preproc)(Image.fromarray(halves))
    assert out.x.shape == (3, 24, 24) and out.x.dtype == torch.float32
    assert out.x.min() == -1 and out.x.max() == 1
    assert out.mask.shape == (1, 24, 24) and out.mask.sum() == 0


def test_eval_code_is_a_squash_without_crop():
    image = Image.fromarray(np.full((10, 30, 3), 255, np.uint8))
    image.paste((0, 0, 0), (0, 0, 9, 10))  # a black left strip survives a squash, not a centre crop
    x = EvalTransform(10, "code")(image).x
    assert x[:, :, 0].max() == -1
    assert EvalTransform(10, "paper")(image).x[:, :, 0].min() == 1


def test_mask_extent_and_box_mask():
    m = torch.zeros(8, 9, dtype=torch.bool)
    m[2:5, 3:7] = True
    assert mask_extent(m).tolist() == [[3, 2, 4, 3]]
    assert mask_extent(torch.zeros(4, 4, dtype=torch.bool)).shape == (0, 4)
    union = box_mask(torch.tensor([[0, 0, 2, 2], [1, 1, 2, 2]]), 4, 4)
    assert union.shape == (1, 4, 4) and union.sum() == 7


def test_bad_switch_values_are_rejected():
    with pytest.raises(ValueError):
        TrainTransform(224, "crop")
    with pytest.raises(ValueError):
        EvalTransform(224, "both")
