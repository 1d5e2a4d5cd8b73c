"""Teacher saliency, get_mask percentile semantics and mask overlap (tap spec §4.1, §5, §10)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from repro.papers.tap.teacher_saliency import input_gradient_saliency, overlap, percentile_mask, random_saliency


def _tag_boxes(n: int = 4, size: int = 224) -> torch.Tensor:
    """(n, size, size) bool: a 22 x 44 box in a different corner per image, as the prepared PNEU/KNEE tags."""
    boxes = torch.zeros(n, size, size, dtype=torch.bool)
    for i in range(n):
        top, left = (0, size - 22)[i % 2], (0, size - 44)[(i // 2) % 2]
        boxes[i, top:top + 22, left:left + 44] = True
    return boxes


def test_get_mask_of_gt_explanation_is_exactly_the_box():
    """§10: E = 1 - box on 3 channels, tau = 0.01 < 968 / 50176: q = 0 and the mask is the box."""
    boxes = _tag_boxes()
    explanation = (1 - boxes.float()).unsqueeze(1).expand(-1, 3, -1, -1)
    mask = percentile_mask(explanation.abs().sum(1), 0.01)
    assert torch.equal(mask, boxes)


def test_tau_above_tag_area_masks_the_whole_image():
    """§4.1 warning: with tau beyond the tag area, q reaches the background value and ties take everything."""
    boxes = _tag_boxes(2)
    mask = percentile_mask(3 * (1 - boxes.float()), 0.05)
    assert mask.all()


def test_percentile_mask_covers_tau_of_random_saliency_per_image():
    gen = torch.Generator().manual_seed(0)
    s = random_saliency((5, 3, 64, 64), gen).abs().sum(1)
    for tau in (0.01, 0.1, 0.5):
        frac = percentile_mask(s, tau).float().mean((1, 2))
        assert torch.allclose(frac, torch.full_like(frac, tau), atol=1.5 / (64 * 64))


def test_percentile_mask_marks_the_lowest_pixels_and_includes_ties():
    s = torch.tensor([[[5.0, 1.0, 1.0, 7.0, 9.0]]]).reshape(1, 1, 5)
    assert percentile_mask(s, 0.2).tolist() == [[[False, True, True, False, False]]]  # q = 1, both ties in
    assert percentile_mask(s, 0.0).sum() == 2


def test_percentile_mask_is_per_image_and_chunked(monkeypatch):
    """Images are thresholded at their own quantile; chunking (forced tiny) changes nothing."""
    s = torch.stack([torch.arange(100.0).reshape(10, 10), 1000 + torch.arange(100.0).reshape(10, 10)])
    whole = percentile_mask(s, 0.1)
    monkeypatch.setattr("repro.papers.tap.teacher_saliency.QUANTILE_LIMIT", 100)
    assert torch.equal(percentile_mask(s, 0.1), whole)
    assert whole.sum((1, 2)).tolist() == [10, 10]


def test_absolute_tau_mode_thresholds_the_normalised_saliency():
    """D-4 paper variant: S / range per image, S < tau; a scaled copy gives the same mask."""
    s = torch.tensor([[[0.0, 1.0, 2.0, 10.0]]])
    assert percentile_mask(s, 0.15, "absolute").tolist() == [[[True, True, False, False]]]
    assert torch.equal(percentile_mask(7 * s + 3, 0.15, "absolute"), percentile_mask(s, 0.15, "absolute"))
    with pytest.raises(ValueError, match="tau_mode"):
        percentile_mask(s, 0.1, "relative")


def test_input_gradient_matches_hand_computation_on_a_linear_model():
    """f(x) = W x + b: d/dx sum_k log_softmax(f)_k = sum_k (W_k - p^T W) = sum_k W_k - K p^T W."""

    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2 * 3 * 3, 3)

        def forward(self, x):
            return self.fc(x.flatten(1)), None

    torch.manual_seed(0)
    model = Linear()
    images = torch.randint(0, 256, (5, 1, 3, 3), dtype=torch.uint8)
    transform = lambda t: (t.float() / 255 - 0.5).expand(-1, 2, -1, -1)  # noqa: E731  grey -> 2 channels
    s = input_gradient_saliency(model, images, transform, batch=2)
    w = model.fc.weight.detach()  # (K, 2*3*3)
    p = torch.softmax(model(transform(images))[0], 1).detach()  # (N, K)
    grad = w.sum(0) - 3 * p @ w  # (N, 18)
    expected = grad.reshape(5, 2, 3, 3).abs().sum(1)
    assert s.dtype == torch.float16 and s.shape == (5, 3, 3)
    assert torch.allclose(s.float(), expected, rtol=2e-3, atol=1e-4)
    assert not model.training


def test_overlap_on_hand_made_masks():
    gt = torch.zeros(2, 4, 4, dtype=torch.bool)
    gt[:, 0, :2] = True  # 2 px per image
    pred = torch.zeros_like(gt)
    pred[0, 0, 0] = pred[0, 3, 3] = True  # 1 hit of 2 predicted: precision 0.5, recall 0.5
    pred[1, 0, :2] = True
    pred[1, 1, :2] = True  # 2 hits of 4 predicted: precision 0.5, recall 1.0
    precision, recall = overlap(pred, gt)
    assert precision == pytest.approx(0.5) and recall == pytest.approx(0.75)
    empty = torch.zeros_like(gt)
    empty[1, 0, 0] = True  # image 0 predicts nothing: precision averages over image 1 only
    assert overlap(empty, gt) == (pytest.approx(1.0), pytest.approx(0.25))
