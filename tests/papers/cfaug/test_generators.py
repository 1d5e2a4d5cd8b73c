"""cfaug CF/F generators (spec §5.3, §5.4; sanity tests §10 items 3-7 and 11)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from repro.papers.cfaug.generators import (CF_INFILLS, F_INFILLS, counterfactual, factual, fgsm_fill, mrand_fill, rect,
                                    shuffle_fill, tile_fill)

B, S = 4, 16


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def box_mask(boxes: list[tuple[int, int, int, int] | None], size: int = S) -> torch.Tensor:
    """(len, 1, size, size) masks with one filled box (r0, r1, c0, c1), inclusive; None = empty."""
    m = torch.zeros(len(boxes), 1, size, size)
    for i, bx in enumerate(boxes):
        if bx is not None:
            r0, r1, c0, c1 = bx
            m[i, 0, r0:r1 + 1, c0:c1 + 1] = 1
    return m


def blob_mask() -> torch.Tensor:
    """Non-rectangular fg: a box plus a disjoint dot, per image at different places, none touching column 0."""
    m = box_mask([(4, 9, 3, 8), (2, 5, 6, 12), (8, 13, 2, 6), (5, 10, 9, 14)])
    m[:, 0, 12, 12] = 1
    return m


def images(seed: int = 1, b: int = B) -> torch.Tensor:
    return torch.rand(b, 3, S, S, generator=gen(seed)) * 2 - 1


class TinyNet(nn.Module):
    def __init__(self, classes: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.drop = nn.Dropout(0.1)
        self.fc = nn.Linear(4, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.fc(self.drop(self.conv(x).relu().mean((2, 3)))), None


# ---- Rect (§10.11) -------------------------------------------------------------------------------------------

def test_rect_is_minimal_box_containing_mask():
    m = (torch.rand(6, 1, S, S, generator=gen(3)) > 0.97).float()
    m[0] = 0
    r = rect(m)
    assert r.shape == m.shape and r.dtype == m.dtype
    assert torch.all(r >= m)
    assert r[0].sum() == 0
    for i in range(1, 6):
        ys, xs = m[i, 0].nonzero(as_tuple=True)
        ref = torch.zeros(S, S)
        ref[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = 1
        assert torch.equal(r[i, 0], ref)


# ---- kept region, Grey, Random (§10.3) ----------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in CF_INFILLS if n != "cagan"])
@pytest.mark.parametrize("shuffle", ["batch_all", "region"])
def test_cf_keeps_outside_rect_bitwise(name, shuffle):
    x, m = images(), blob_mask()
    out = counterfactual(name, x, m, gen(), shuffle=shuffle)
    keep = (1 - rect(m)).bool().expand_as(x)
    assert out.shape == x.shape
    assert torch.equal(out[keep], x[keep])
    assert not torch.equal(out[~keep], x[~keep])


@pytest.mark.parametrize("name", F_INFILLS)
def test_f_keeps_foreground_bitwise(name):
    x, m = images(), blob_mask()
    y = torch.tensor([0, 1, 2, 0])
    out = factual(name, x, m, y, gen(), model=TinyNet())
    fg = m.bool().expand_as(x)
    assert torch.equal(out[fg], x[fg])
    assert not torch.equal(out[~fg], x[~fg])


def test_grey_fills_zero():
    x, m = images(), blob_mask()
    out = counterfactual("grey", x, m, gen())
    assert torch.all(out[rect(m).bool().expand_as(x)] == 0)


def test_random_fill_constant_colour_plus_noise():
    x = torch.zeros(32, 3, 32, 32)
    m = torch.ones(32, 1, 32, 32)
    out = counterfactual("random", x, m, gen(5))
    assert out.min() >= -1 and out.max() <= 1
    mean, std = out.mean((2, 3)), out.std((2, 3))
    assert mean.std() > 0.3  # one colour per image and channel, not a shared one
    mid = (mean.abs() < 0.3)  # colours far from the clamp: the noise is N(0, 0.4^2) in normalised units
    assert mid.sum() >= 5
    assert torch.allclose(std[mid], torch.full_like(std[mid], 0.4), atol=0.04)


# ---- Shuffle (§10.4, C-5) ------------------------------------------------------------------------------------

def test_shuffle_batch_all_is_permutation_of_batch_tensor():
    x = torch.randperm(B * 3 * S * S, generator=gen(2)).float().reshape(B, 3, S, S)
    xhat = shuffle_fill(x, torch.zeros(B, 1, S, S), gen())
    assert torch.equal(xhat.flatten().sort().values, x.flatten().sort().values)
    assert not torch.equal(xhat, x)
    m = blob_mask()
    out = counterfactual("shuffle", x, m, gen())
    region = rect(m).bool().expand_as(x)
    assert torch.isin(out[region], x.flatten()).all()
    own0 = torch.isin(out[0][region[0]], x[0].flatten())
    assert not own0.all()  # the permutation mixes images


def test_shuffle_region_permutes_pixels_within_each_image_region():
    x, m = images(), blob_mask()
    region = 1 - m
    xhat = shuffle_fill(x, region, gen(), "region")
    out_region = ~region.bool()[:, 0]
    assert torch.equal(xhat.permute(0, 2, 3, 1)[out_region], x.permute(0, 2, 3, 1)[out_region])
    for i in range(B):
        sel = region[i, 0].bool()
        a, b = x[i][:, sel].T.tolist(), xhat[i][:, sel].T.tolist()
        assert sorted(map(tuple, a)) == sorted(map(tuple, b))  # same RGB pixels, moved together
    assert not torch.equal(xhat, x)


# ---- Tile (§10.5, C-6) ---------------------------------------------------------------------------------------

def test_tile_uses_thicker_band_tiled_from_top_left():
    x = images(b=2)
    m = box_mask([(4, 9, 3, 12), (1, 14, 2, 5)])  # image 0: rows 10..15 (6) vs cols 13..15 (3) -> horizontal
    out = counterfactual("tile", x, m, gen())  # image 1: rows 15 / 0 (1) vs cols 6..15 (10) -> vertical
    r = torch.arange(S)
    exp0 = x[0][:, 10 + r % 6, :]
    exp1 = x[1][:, :, 6 + r % 10]
    hole = rect(m).bool()
    assert torch.equal(out[0][hole[0].expand(3, S, S)], exp0[hole[0].expand(3, S, S)])
    assert torch.equal(out[1][hole[1].expand(3, S, S)], exp1[hole[1].expand(3, S, S)])
    assert torch.all(m[0, 0, 10:] == 0) and torch.all(m[1, 0, :, 6:] == 0)  # the bands are fully background


def test_tile_tie_prefers_horizontal():
    x = images(b=1)
    m = box_mask([(0, 9, 0, 9)])  # rows 10..15 and cols 10..15: both 6 thick
    xhat = tile_fill(x, 1 - m)
    assert torch.equal(xhat[0], x[0][:, 10 + torch.arange(S) % 6, :])


def test_tile_without_band_gives_zeros_and_full_keep_gives_x():
    x = images(b=2)
    keep = torch.ones(2, 1, S, S)
    assert torch.equal(tile_fill(x, keep), x)
    assert torch.equal(counterfactual("tile", x, torch.zeros(2, 1, S, S), gen()), x)
    keep[0, 0, torch.arange(S), torch.arange(S)] = 0  # every row and column touches fg
    keep[1] = 0
    assert torch.all(tile_fill(x, keep) == 0)
    assert torch.all(counterfactual("tile", x, box_mask([(0, 15, 0, 15), (0, 15, 0, 15)]), gen()) == 0)


def test_tile_bbox_x0_bug_returns_original():
    x = images(b=2)
    m = box_mask([(3, 8, 0, 5), (3, 8, 4, 9)])  # image 0's box starts at column 0
    on = counterfactual("tile", x, m, gen(), tile_bbox=True, tile_x0_bug=True)
    off = counterfactual("tile", x, m, gen(), tile_bbox=True, tile_x0_bug=False)
    plain = counterfactual("tile", x, m, gen())
    assert torch.equal(on[0], x[0])
    assert not torch.equal(off[0], x[0])
    assert torch.equal(off, plain) and torch.equal(on[1], plain[1])


# ---- Mixed-Rand (§10.6) --------------------------------------------------------------------------------------

def test_mrand_donors_have_other_labels():
    k = 6
    values = torch.linspace(-0.9, 0.9, k)
    x = values[:, None, None, None].expand(k, 3, S, S).clone()
    m = box_mask([(3 + i, 8 + i, 2 + i, 7) for i in range(k)])
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    for seed in range(5):
        out = factual("mrand", x, m, y, gen(seed))
        for i in range(k):
            bg = out[i][~m[i].bool().expand(3, S, S)]
            assert torch.all(bg == bg[0])  # one donor's constant tile
            donor = (bg[0] - values).abs().argmin()
            assert y[donor] != y[i]


def test_mrand_single_class_or_single_image_gives_zero_background():
    x, m = images(), blob_mask()
    bg = ~m.bool().expand_as(x)
    out = factual("mrand", x, m, torch.zeros(B, dtype=torch.long), gen())
    assert torch.all(out[bg] == 0)
    out1 = factual("mrand", x[:1], m[:1], torch.tensor([2]), gen())
    assert torch.all(out1[bg[:1]] == 0)


def test_mrand_x0_bug_donor_gives_whole_image():
    x = torch.full((2, 3, S, S), -0.5)
    m = box_mask([(3, 8, 4, 9), (3, 8, 0, 5)])  # the donor of image 0 is image 1, whose box starts at x = 0
    x[1][m[1].expand(3, S, S).bool()] = 0.9
    y = torch.tensor([0, 1])
    on = mrand_fill(x, m, y, gen(), x0_bug=True)
    off = mrand_fill(x, m, y, gen(), x0_bug=False)
    assert torch.equal(on[0], x[1])
    assert torch.all(off[0] == -0.5)


# ---- FGSM (§10.7, C-13) --------------------------------------------------------------------------------------

def test_fgsm_bounds_and_model_untouched():
    torch.manual_seed(0)
    model = TinyNet()
    model.train()
    model.drop.eval()
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.123)
    model.fc.bias.requires_grad_(False)
    before = [p.detach().clone() for p in model.parameters()]
    x, m = images(), blob_mask()
    x[:, :, :2] = 0.95  # near the [-1, 1] border so the clip matters
    y = torch.tensor([0, 1, 2, 1])
    eps = 0.3
    out = fgsm_fill(model, x, m, y, gen(), eps=eps)
    delta = out - x
    assert not out.requires_grad
    assert delta.abs().max() <= eps + 1e-6 and delta.abs().max() > 0.5 * eps
    assert torch.all(delta[m.bool().expand_as(x)] == 0)
    assert out.min() >= -1 and out.max() <= 1
    assert model.training and not model.drop.training and model.conv.training
    assert [p.requires_grad for p in model.parameters()] == [True, True, True, False]
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b) and torch.all(p.grad == 0.123)


def test_fgsm_step_follows_gradient_sign():
    model = TinyNet()
    x, m = images(), torch.zeros(B, 1, S, S)
    y = torch.tensor([0, 1, 2, 1])
    eps = 0.01  # away from the clip: the step 1.25 eps saturates the projection, so delta = eps * sign(grad)
    out = fgsm_fill(model, x, m, y, gen(), eps=eps)
    xr = x.clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(model(xr)[0], y, reduction="sum").backward()
    agree = ((out - x).sign() == xr.grad.sign()).float().mean()
    assert agree > 0.95


# ---- determinism ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["random", "shuffle"])
def test_generators_deterministic_in_generator(name):
    x, m, y = images(), blob_mask(), torch.tensor([0, 1, 2, 0])
    a = counterfactual(name, x, m, gen(7))
    assert torch.equal(a, counterfactual(name, x, m, gen(7)))
    assert not torch.equal(a, counterfactual(name, x, m, gen(8)))
    fa = factual(name, x, m, y, gen(7))
    assert torch.equal(fa, factual(name, x, m, y, gen(7)))


def test_cagan_returns_precomputed_and_unknown_names_raise():
    x, m = images(), blob_mask()
    cag = images(9)
    assert torch.equal(counterfactual("cagan", x, m, gen(), cagan=cag), cag)
    with pytest.raises(ValueError):
        counterfactual("cagan", x, m, gen())
    with pytest.raises(ValueError):
        counterfactual("blur", x, m, gen())
    with pytest.raises(ValueError):
        factual("grey", x, m, torch.zeros(B, dtype=torch.long), gen())
    with pytest.raises(ValueError):
        factual("fgsm", x, m, torch.zeros(B, dtype=torch.long), gen())


def test_cct_counterfactual_removes_the_union_of_boxes_not_their_rectangle():
    """C-14: CF removes the mask's bounding rectangle on IN-9 / WB, the boxes' union itself on CCT."""
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 0:2, 0:2] = 1
    mask[..., 6:8, 6:8] = 1
    gen = torch.Generator().manual_seed(0)
    union = counterfactual("grey", x, mask, gen, rectangle=False)
    boxed = counterfactual("grey", x, mask, gen)
    assert (union == 0).all(1).sum() == 8 and torch.equal(union * (1 - mask), x * (1 - mask))
    assert (boxed == 0).all(1).sum() == 64  # the rectangle spanning both boxes is the whole image
