"""The synth2 generator and loader (actdiff spec §5, §13.4)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from repro.papers.actdiff.data_synthetic import (BOX_COLS, BOX_ROWS, build_synthetic, draw_crosses, generate_pool,
                                                 load_split)


def test_pool_counts_labels_and_image_is_crosses_or_box():
    img, seg, labels = generate_pool(0)
    assert img.shape == (512, 28, 28) and set(np.unique(img)) == {0.0, 1.0}
    assert (labels[:256] == 1).all() and (labels[256:] == 0).all()
    box = np.zeros_like(img)
    for i, lab in enumerate(labels):
        box[i, BOX_ROWS, BOX_COLS[int(lab)]] = 1
    assert np.array_equal(img, np.maximum(seg, box))
    sizes = seg.reshape(512, -1).sum(1)
    assert set(sizes[labels == 1]) <= {5, 9}
    two = sizes[labels == 0]
    assert np.isin(two, [10, 18]).mean() > 0.95  # two disjoint crosses of one arm length; a few overlap
    assert set(two) <= {8, 10, 16, 18}  # never collinear, so never 9, 15 or 17 (spec §5.2)


def _centres(seg: np.ndarray) -> np.ndarray:
    """Pixels set with all four neighbours set: the centres of disjoint plus signs."""
    s = np.pad(seg, 1)
    core = s[1:-1, 1:-1] * s[:-2, 1:-1] * s[2:, 1:-1] * s[1:-1, :-2] * s[1:-1, 2:]
    return np.argwhere(core > 0)


def test_two_crosses_never_share_a_row_or_a_column():
    rng = np.random.default_rng(0)
    segs = [draw_crosses(rng, 2) for _ in range(3000)]
    disjoint = [_centres(s) for s in segs if s.sum() in (10, 18)]
    assert len(disjoint) > 2800 and all(len(c) == 2 for c in disjoint)
    assert all(a[0] != b[0] and a[1] != b[1] for a, b in disjoint)  # an independent draw: ~8% collinear


def test_pools_repeat_images_and_are_deterministic():
    """Drawn with repetition, as the authors' pools (spec §5.2): some class-1 images recur within a pool
    and train images recur in valid and test; the draw is the same every time."""
    pools = [generate_pool(p) for p in range(3)]
    one_cross = pools[0][0][pools[0][2] == 1]
    assert 200 < len({im.tobytes() for im in one_cross}) < 256
    train = {im.tobytes() for im in pools[0][0]}
    assert all(0 < sum(im.tobytes() in train for im in pool[0]) < 100 for pool in pools[1:])
    assert np.array_equal(generate_pool(2)[0], generate_pool(2)[0])


def test_split_balance_order_and_flip_inverts_the_box():
    train = load_split("train", 500)
    valid = load_split("valid", 128)
    assert train["label"][:250].eq(1).all() and train["label"][250:].eq(0).all()
    assert valid["label"].sum() == 64
    one_cross_train = train["img"][0, 0] - train["seg"][0, 0]
    assert one_cross_train[BOX_ROWS, BOX_COLS[1]].min() == 1  # class 1 box bottom-left in train
    one_cross_valid = valid["img"][0, 0] - valid["seg"][0, 0]
    assert one_cross_valid[BOX_ROWS, BOX_COLS[0]].min() == 1  # ... and bottom-right in valid (flipped)
    assert torch.equal(valid["mask"], F.max_pool2d(valid["seg"], 5, 1, 2))


def test_dilation_equals_gaussian_then_positive():
    from scipy.ndimage import gaussian_filter

    train = load_split("train", 64)
    for i in range(0, 64, 9):
        seg = train["seg"][i, 0].numpy().astype(np.float64)
        ref = gaussian_filter(seg, 0.5, mode="nearest", truncate=4.0) > 0
        assert np.array_equal(ref, train["mask"][i, 0].numpy() > 0)


def test_maxmasks_replaces_masks_with_ones_per_class_half():
    full = load_split("train", 500)
    part = load_split("train", 500, maxmasks=0.4)
    all_ones = part["mask"].flatten(1).min(1).values == 1
    assert all_ones[:250].sum() == 150 and all_ones[250:].sum() == 150
    assert torch.equal(full["img"], part["img"])


def test_build_synthetic_variants():
    d = build_synthetic(seed=3, device=torch.device("cpu"), n_train=32, n_valid=32, n_test=32,
                        mask_train_inputs=True)
    assert set(d.evals) == {"train", "valid", "test", "test_clean"}
    assert torch.equal(d.x, d.evals["train"][0])
    assert (d.x * (1 - d.mask)).abs().sum() == 0  # Classify Masked: nothing outside the ROI
    clean = d.evals["test_clean"][0]
    assert clean[:, :, BOX_ROWS].sum() < d.evals["test"][0][:, :, BOX_ROWS].sum()
    same = build_synthetic(seed=4, device=torch.device("cpu"), n_train=32, n_valid=32, n_test=32)
    other = build_synthetic(seed=4, device=torch.device("cpu"), n_train=32, n_valid=32, n_test=32,
                            split_seed="run_seed")
    assert torch.equal(same.x, build_synthetic(seed=9, device=torch.device("cpu"), n_train=32, n_valid=32,
                                               n_test=32).x)  # A-4 code: the split ignores the run seed
    assert not torch.equal(same.x, other.x)  # A-4 paper variant: the run seed draws another subset
