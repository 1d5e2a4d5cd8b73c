"""Masks applied to the original files (PNG exactly, JPEG re-encoded at q75), the D-5 geometries, and the
group-label guard: training, masking and model selection never read a split's groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repro.data.image_sets import ImageSplit
from repro.papers.masktune.masks import _dest, _write_masked, original_keep, settings


def _image(path: Path, size=(12, 10)) -> np.ndarray:
    rng = np.random.RandomState(0)
    img = rng.randint(1, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(img).save(path)
    return img


def _keep() -> torch.Tensor:
    keep = torch.ones(4, 4, dtype=torch.uint8)
    keep[1:3, 2:4] = 0
    return keep


@pytest.mark.parametrize("fmt", ["code", "lossless_png"])
def test_png_original_masked_exactly(tmp_path, fmt):
    src = tmp_path / "a.png"
    img = _image(src)
    split = ImageSplit(np.array([1]), ["a.png"], files=[src])
    dest = _dest(tmp_path / "cache", split, 0, settings({"masked_format": fmt}))
    _write_masked(src, dest, _keep(), "cifar", "code")
    expected = img * original_keep(_keep(), "cifar", 12, 10, "code").numpy()[..., None]
    assert dest.parent.name == "1" and np.array_equal(np.asarray(Image.open(dest)), expected)


def test_jpeg_original_reencoded_at_q75_or_lossless(tmp_path):
    src = tmp_path / "cat.1.jpg"
    Image.fromarray(_image(tmp_path / "x.png", (32, 32))).save(src, quality=95)
    original = np.asarray(Image.open(src).convert("RGB"))
    expected = original * original_keep(_keep(), "catsdogs", 32, 32, "code").numpy()[..., None]
    split = ImageSplit(np.array([0]), ["cat.1.jpg"], files=[src])
    jpg = _dest(tmp_path / "c1", split, 0, settings({}))
    png = _dest(tmp_path / "c2", split, 0, settings({"masked_format": "lossless_png"}))
    for dest in (jpg, png):
        _write_masked(src, dest, _keep(), "catsdogs", "code")
    assert Image.open(jpg).format == "JPEG" and jpg.suffix == ".jpg"
    lossy = np.asarray(Image.open(jpg)).astype(int)
    assert not np.array_equal(lossy, expected) and np.abs(lossy - expected).mean() < 20
    assert Image.open(png).format == "PNG" and np.array_equal(np.asarray(Image.open(png)), expected)


def test_celeba_mask_geometry_code_stretches_aligned_maps_into_the_crop():
    keep = torch.zeros(224, 224, dtype=torch.uint8)  # everything masked in crop space
    code = original_keep(keep, "celeba", 178, 218, "code")
    aligned = original_keep(keep, "celeba", 178, 218, "aligned")
    assert code.shape == aligned.shape == (218, 178)
    assert (code == 0).all()  # stretched over the whole 178x218 image (D-5)
    assert (aligned[:20] == 1).all() and (aligned[198:] == 1).all() and (aligned[20:198] == 0).all()


class GuardedSplit(ImageSplit):
    """A split whose group labels raise when read after construction."""

    armed = False

    @property
    def groups(self):
        if self.armed:
            raise AssertionError("group labels read outside the test evaluation")

    @groups.setter
    def groups(self, value):
        pass


def test_training_and_masking_never_read_group_labels():
    pytest.importorskip("pytorch_grad_cam")
    from repro.papers.masktune.feed import Feeder
    from repro.papers.masktune.masks import compute_masks
    from repro.papers.masktune.train import split_logits, train_epoch
    from repro.models import build_model

    rng = np.random.RandomState(0)
    split = GuardedSplit(rng.randint(0, 2, 8), [f"{i}.png" for i in range(8)],
                         rng.randint(0, 255, (8, 28, 28, 3)).astype(np.uint8))
    split.armed = True
    model = build_model("smallcnn")
    feeder = Feeder("mnist", torch.device("cpu"), 4)
    gen = torch.Generator().manual_seed(0)
    train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.01), feeder, split, gen)
    split_logits(model, feeder, split, gen)
    assert compute_masks(model, split, feeder, settings({}), gen).shape == (8, 28, 28)
