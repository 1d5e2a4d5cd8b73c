"""The CelebA, Waterbirds and IN-9 image transforms (spec §2.2-2.4, D-27) and the RGB opener."""

from __future__ import annotations


import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from repro.papers.masktune.pil_transforms import Lighting, normalisation, pil_transforms

KINDS = ["celeba", "waterbirds", "in9"]
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
GREY, RED = (128, 128, 128), (255, 0, 0)


def striped(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    """A grey RGB image of `size` (W, H) with a red rectangle `box` (left, top, right, bottom)."""
    image = Image.new("RGB", size, GREY)
    image.paste(RED, box)
    return image


def red(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Where a transformed image is red: red minus green above 0.5 in [0, 1] pixel space, (224, 224) bool."""
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in normalisation(kind))
    pixels = x * std + mean
    return pixels[0] - pixels[1] > 0.5


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [(178, 218), (500, 375)])
def test_every_transform_gives_a_224_square(kind, size):
    for name, transform in pil_transforms(kind).items():
        x = transform(Image.new("RGB", size, (30, 60, 90)))
        assert x.shape == (3, 224, 224) and x.dtype == torch.float32, name


def test_normalisation_stats():
    assert normalisation("celeba") == normalisation("waterbirds") == IMAGENET
    assert normalisation("in9") == ((0.4717, 0.4499, 0.3837), (0.2600, 0.2516, 0.2575))
    with pytest.raises(ValueError, match="unknown transform family 'mnist'"):
        normalisation("mnist")


@pytest.mark.parametrize("kind", KINDS)
def test_eval_normalises_with_the_family_stats(kind):
    colour = (128, 64, 200)
    x = pil_transforms(kind)["eval"](Image.new("RGB", (300, 260), colour))
    mean, std = normalisation(kind)
    expected = torch.tensor([(c / 255 - m) / s for c, m, s in zip(colour, mean, std)]).view(3, 1, 1)
    assert torch.allclose(x, expected.expand_as(x), atol=1e-5)


@pytest.mark.parametrize("kind, scale, ratio, steps", [
    ("celeba", (0.7, 1.0), (1.0, 4 / 3), [T.RandomResizedCrop, T.RandomHorizontalFlip, T.ToTensor, T.Normalize]),
    ("waterbirds", (0.7, 1.0), (0.75, 4 / 3), [T.RandomResizedCrop, T.RandomHorizontalFlip, T.ToTensor, T.Normalize]),
    ("in9", (0.08, 1.0), (3 / 4, 4 / 3), [T.RandomResizedCrop, T.RandomHorizontalFlip, T.ColorJitter, T.ToTensor,
                                          Lighting, T.Normalize])])
def test_train_pipeline(kind, scale, ratio, steps):
    train = pil_transforms(kind)["train"].transforms
    assert [type(t) for t in train] == steps
    assert train[0].size == (224, 224) and train[0].scale == scale and train[0].ratio == pytest.approx(ratio)
    if kind == "in9":
        assert train[2].brightness == train[2].contrast == train[2].saturation == pytest.approx((0.9, 1.1))


def test_lighting_adds_the_pca_shift_per_channel():
    torch.manual_seed(3)
    x = torch.rand(3, 5, 4)
    torch.manual_seed(7)
    out = Lighting()(x)
    torch.manual_seed(7)
    alpha = (torch.randn(3) * 0.05).tolist()
    eigval = [0.2175, 0.0188, 0.0045]
    eigvec = [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
    shift = [sum(eigvec[i][j] * alpha[j] * eigval[j] for j in range(3)) for i in range(3)]
    assert min(abs(s) for s in shift) > 1e-4  # a real shift, not the identity
    assert torch.allclose(out - x, torch.tensor(shift).view(3, 1, 1).expand_as(x), atol=1e-6)
    assert not torch.allclose(Lighting()(x), Lighting()(x))  # a fresh alpha per image


@pytest.mark.parametrize("kind", KINDS)
def test_eval_and_mask_are_deterministic_and_train_is_not(kind):
    image = striped((260, 300), (0, 0, 90, 120))
    transforms = pil_transforms(kind)
    for name in ("eval", "mask"):
        torch.manual_seed(0)
        first = transforms[name](image)
        torch.manual_seed(1)
        assert torch.equal(first, transforms[name](image)), name
    torch.manual_seed(0)
    first = transforms["train"](image)
    torch.manual_seed(1)
    assert not torch.allclose(first, transforms["train"](image))


def test_celeba_eval_and_mask_crop_the_central_square():
    image = striped((178, 218), (0, 0, 178, 18))  # red in the top 20 px that CenterCrop(178) removes
    transforms = pil_transforms("celeba")
    x = transforms["eval"](image)
    assert not red(x, "celeba").any() and torch.equal(x, transforms["mask"](image))


def test_waterbirds_resizes_both_sides_to_256_before_the_crop():
    image = striped((512, 256), (0, 0, 100, 256))  # red left strip: 50 of 256 px after Resize((256, 256))
    transforms = pil_transforms("waterbirds")
    x = transforms["eval"](image)
    assert red(x, "waterbirds")[:, :30].all()  # Resize(256) of the shorter side would have cropped it away
    assert not red(x, "waterbirds")[:, 40:].any() and torch.equal(x, transforms["mask"](image))


def test_in9_eval_crops_but_mask_resizes_the_whole_image():
    image = striped((512, 256), (0, 0, 100, 256))  # Resize(256) keeps 512 x 256; CenterCrop(224) drops 144 px a side
    transforms = pil_transforms("in9")
    assert not red(transforms["eval"](image), "in9").any()
    mask = red(transforms["mask"](image), "in9")  # the strip spans 100 / 512 of the 224 columns
    assert mask[:, :40].all() and not mask[:, 48:].any()
