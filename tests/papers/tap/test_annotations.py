"""Annotation sources of the TAP penalties: ground truth, teacher saliency files and seeded random masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from repro.papers.tap.annotations import training_mask, upsample_mask
from repro.papers.tap.teacher_saliency import percentile_mask


def _gt(n: int = 3, size: int = 32) -> torch.Tensor:
    gt = torch.zeros(n, 1, size, size)
    gt[:, :, :4, :8] = 1
    return gt


def test_gt_source_is_the_box(tmp_path):
    gt = _gt()
    assert torch.equal(training_mask({"source": "gt"}, gt, 0, tmp_path), gt.bool())


def test_random_source_is_seeded_and_covers_tau(tmp_path):
    gt = _gt(4)
    a = training_mask({"source": "random", "tau": 0.1}, gt, 0, tmp_path)
    assert a.dtype == torch.bool and a.shape == gt.shape
    assert torch.equal(a, training_mask({"source": "random", "tau": 0.1}, gt, 0, tmp_path))
    assert not torch.equal(a, training_mask({"source": "random", "tau": 0.1}, gt, 1, tmp_path))
    frac = a.float().mean((1, 2, 3))
    assert torch.allclose(frac, torch.full_like(frac, 0.1), atol=1 / 1024)


def test_teacher_source_thresholds_the_stored_saliency(tmp_path):
    """Low saliency on the tag box: at tau below the box area the mask lies inside the box; at the
    box area exactly it is the box."""
    gt = _gt()
    saliency = np.where(gt[:, 0].numpy() > 0, 0.01, 1.0) + np.random.default_rng(0).random((3, 32, 32)) * 1e-3
    (tmp_path / "t").mkdir()
    np.save(tmp_path / "t" / "s.npy", saliency.astype(np.float16))
    spec = {"source": "teacher", "saliency": "t/s.npy"}
    small = training_mask({**spec, "tau": 0.02}, gt, 0, tmp_path)
    assert small.shape == gt.shape and small.dtype == torch.bool
    assert (small & ~gt.bool()).sum() == 0 and small.sum() > 0
    exact = training_mask({**spec, "tau": 31.5 / 1024}, gt, 0, tmp_path)  # 32 of 1024 px, the box
    assert torch.equal(exact, gt.bool())


def test_masks_at_a_downscaled_training_resolution_survive_the_loaders_max_pool(tmp_path):
    """Saliency at 16 px (a profile training at 16 px), boxes at 32 px: the source's mask, max-pooled back to
    16 px as the loader does, is get_mask at 16 px; the random source at size 16 likewise covers tau there."""
    gt = _gt()
    small_gt = F.adaptive_max_pool2d(gt, 16)[:, 0]
    saliency = torch.where(small_gt > 0, 0.0, 1.0) + torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    np.save(tmp_path / "s.npy", saliency.numpy().astype(np.float16))
    mask = training_mask({"source": "teacher", "saliency": "s.npy", "tau": 0.02}, gt, 0, tmp_path)
    assert mask.shape == gt.shape and (mask & ~gt.bool()).sum() == 0
    pooled = F.adaptive_max_pool2d(mask.float(), 16)[:, 0].bool()
    assert torch.equal(pooled, percentile_mask(saliency.half(), 0.02))
    rnd = training_mask({"source": "random", "tau": 0.25, "size": 16}, gt, 0, tmp_path)
    frac = F.adaptive_max_pool2d(rnd.float(), 16).mean((1, 2, 3))
    assert torch.allclose(frac, torch.full_like(frac, 0.25), atol=1 / 256)


@pytest.mark.parametrize("size", [12, 16])
def test_upsampled_masks_survive_max_pooling_for_sizes_not_dividing_the_boxes(size):
    """32 -> 12 px has overlapping pooling windows (as 224 -> 64 in the quick profile): still exact."""
    mask = torch.rand(8, size, size, generator=torch.Generator().manual_seed(1)) < 0.1
    up = upsample_mask(mask, _gt(8))
    assert up.shape == (8, 1, 32, 32)
    assert torch.equal(F.adaptive_max_pool2d(up.float(), size)[:, 0].bool(), mask)


def test_teacher_source_errors_name_the_problem(tmp_path):
    gt = _gt()
    with pytest.raises(FileNotFoundError, match="figure9"):
        training_mask({"source": "teacher", "saliency": "nope.npy", "tau": 0.01}, gt, 0, tmp_path)
    np.save(tmp_path / "s.npy", np.zeros((2, 32, 32), np.float16))
    with pytest.raises(ValueError, match="3 training rows"):
        training_mask({"source": "teacher", "saliency": "s.npy", "tau": 0.01}, gt, 0, tmp_path)
    with pytest.raises(KeyError, match="unknown annotation source"):
        training_mask({"source": "oracle"}, gt, 0, tmp_path)
