"""Batched augmentation against torchvision on single images (spec §2.5-2.7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from repro.papers.masktune.tensor_augment import affine_nearest, affine_params, augment, crop_padded, hflip, to_float


def images(b: int = 6, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(seed).randint(1, 256, (b, h, w, 3)).astype(np.uint8))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tv_affine(img: torch.Tensor | Image.Image, angle: float, tx: int, ty: int):
    return TF.affine(img, angle=angle, translate=[tx, ty], scale=1.0, shear=[0.0, 0.0],
                     interpolation=InterpolationMode.NEAREST, fill=0)


def test_to_float_is_to_tensor():
    x = images()
    assert all(torch.equal(to_float(x)[i], TF.to_tensor(x[i].numpy())) for i in range(len(x)))


def test_hflip_per_sample():
    x, flip = to_float(images()), torch.tensor([True, False, True, True, False, False])
    out = hflip(x, flip)
    assert all(torch.equal(out[i], TF.hflip(x[i]) if flip[i] else x[i]) for i in range(len(x)))


@pytest.mark.parametrize("h, w", [(32, 32), (64, 64), (24, 40)])
def test_affine_at_angle_0_with_integer_shift_is_torchvision_tensor_and_pil(h, w):
    x = images(7, h, w)
    tx, ty = torch.tensor([0, 3, -3, 6, -6, 2, 0]), torch.tensor([0, -2, 3, 6, 1, -6, -4])
    out = affine_nearest(to_float(x), torch.zeros(7), tx, ty)
    for i in range(7):
        assert torch.equal(out[i], tv_affine(to_float(x)[i:i + 1], 0.0, int(tx[i]), int(ty[i]))[0])
        pil = tv_affine(Image.fromarray(x[i].numpy()), 0.0, int(tx[i]), int(ty[i]))
        assert torch.equal(out[i], TF.to_tensor(pil))
    shifted = out[3]  # (tx, ty) = (6, 6): 6 columns right, 6 rows down, zeros behind
    assert shifted[:, :6].eq(0).all() and shifted[:, :, :6].eq(0).all() and shifted[:, 6:, 6:].ne(0).all()


def test_affine_rotation_follows_torchvision_convention():
    u = images(3)
    x = to_float(u)
    quarter = affine_nearest(x, torch.full((3,), 90.0), torch.zeros(3), torch.zeros(3))
    assert torch.equal(quarter, x.rot90(-1, dims=(-2, -1)))  # F.affine: positive angle = clockwise (F.rotate: anti)
    assert torch.equal(quarter, tv_affine(x, 90.0, 0, 0))
    angle, tx, ty = torch.tensor([12.3, -7.9, 15.0]), torch.tensor([2, -3, 0]), torch.tensor([-1, 3, 3])
    out = affine_nearest(x, angle, tx, ty)
    for i in range(3):
        args = float(angle[i]), int(tx[i]), int(ty[i])
        assert torch.equal(out[i], tv_affine(x[i:i + 1], *args)[0])
        pil = TF.to_tensor(tv_affine(Image.fromarray(u[i].numpy()), *args))  # the code's path: PIL's rounding
        assert (out[i] == pil).float().mean() > 0.995


@pytest.mark.parametrize("top, left", [(0, 0), (8, 8), (3, 5), (8, 0)])
def test_crop_padded_is_torchvision_pad_then_crop(top, left):
    x = images(2)
    tops, lefts = torch.tensor([top, 1]), torch.tensor([left, 7])
    out = crop_padded(x, tops, lefts)
    assert out.shape == x.shape
    for i in range(2):
        ref = TF.crop(TF.pad(x[i].permute(2, 0, 1), [4], fill=0), int(tops[i]), int(lefts[i]), 32, 32)
        assert torch.equal(out[i], ref.permute(1, 2, 0))


@pytest.mark.parametrize("kind", ["mnist", "cifar", "catsdogs", "svhn"])
def test_same_generator_state_same_output(kind):
    x = images(8)
    a, b, c = augment(kind, x, gen(1)), augment(kind, x, gen(1)), augment(kind, x, gen(2))
    assert a.shape == (8, 3, 32, 32) and a.dtype == torch.float32 and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b)
    assert torch.equal(a, c) == (kind == "mnist")


def test_cifar_is_flip_then_affine_with_the_drawn_parameters():
    x = images(8, 64, 64)
    flip, angle, tx, ty = affine_params(8, 64, 64, gen(3))
    expected = affine_nearest(hflip(to_float(x), flip), angle, tx, ty)
    assert torch.equal(augment("catsdogs", x, gen(3)), expected)


def test_affine_parameter_ranges():
    flip, angle, tx, ty = affine_params(20_000, 32, 64, gen(0))
    assert 0.48 < flip.float().mean() < 0.52
    assert -15 <= angle.min() < -14.9 and 14.9 < angle.max() <= 15
    assert set(tx.tolist()) == set(range(-6, 7)) and set(ty.tolist()) == set(range(-3, 4))  # round(U[-6.4, 6.4])
    assert torch.equal(tx, tx.round())


def test_svhn_is_a_padded_crop_at_the_drawn_offsets():
    x = images(8)
    offsets = torch.randint(0, 9, (2, 8), generator=gen(4))
    out = augment("svhn", x, gen(4))
    for i in range(8):
        ref = TF.crop(TF.pad(x[i].permute(2, 0, 1), [4], fill=0), int(offsets[0, i]), int(offsets[1, i]), 32, 32)
        assert torch.equal(out[i], ref.float() / 255)


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown augmentation kind"):
        augment("imagenet", images(1), gen())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", ["cifar", "svhn"])
def test_cuda_matches_cpu_with_a_cpu_generator(kind):
    x = images(16)
    assert torch.equal(augment(kind, x.cuda(), gen(5)).cpu(), augment(kind, x, gen(5)))
