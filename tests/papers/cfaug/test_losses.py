"""cfaug losses and the training-step loss (spec §5.1, 5.2, 5.5, 5.6; sanity tests §10 items 1, 2, 8, 16)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repro.papers.cfaug.generators import counterfactual, factual
from repro.papers.cfaug.losses import (CF_FORMS, CfaugMethod, cf_loss, label_smoothing_loss, mixup, mixup_loss,
                                       sal_penalty, step_loss)

B, C, S = 4, 3, 8


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Linear(nn.Module):
    """z = W flatten(x) + b, returning (logits, None) like repro models."""

    def __init__(self, classes: int = C, seed: int = 0):
        super().__init__()
        g = gen(seed)
        self.w = nn.Parameter(torch.randn(classes, 3 * S * S, generator=g) * 0.1)
        self.b = nn.Parameter(torch.randn(classes, generator=g) * 0.1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return x.flatten(1) @ self.w.T + self.b, None


def make_batch(has_bbox: list[bool] | None = None, seed: int = 1) -> dict[str, torch.Tensor]:
    g = gen(seed)
    hb = torch.tensor(has_bbox if has_bbox is not None else [True, False, True, True])
    mask = torch.zeros(B, 1, S, S)
    mask[:, :, 2:5, 3:6] = 1
    mask[1] = 0
    mask[~hb] = 0
    return {"x": torch.rand(B, 3, S, S, generator=g) * 2 - 1, "y": torch.tensor([0, 2, 1, 2]), "mask": mask,
            "has_bbox": hb, "cagan": torch.rand(B, 3, S, S, generator=g) * 2 - 1}


# ---- CF loss (§10.1) -----------------------------------------------------------------------------------------

def test_cf_loss_matches_naive_and_two_class_flip():
    z = torch.randn(6, 5, generator=gen()) * 3
    c = torch.tensor([0, 1, 2, 3, 4, 0])
    naive = -torch.log(1 - z.softmax(1).gather(1, c[:, None])[:, 0])
    assert torch.allclose(cf_loss(z, c), naive, atol=1e-5)
    z2, c2 = torch.randn(6, 2, generator=gen(1)) * 3, torch.tensor([0, 1, 1, 0, 1, 0])
    assert torch.allclose(cf_loss(z2, c2), F.cross_entropy(z2, 1 - c2, reduction="none"), atol=1e-5)


def test_cf_loss_stable_and_pushes_target_logit_down():
    z = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, -1e4]], requires_grad=True)
    c = torch.tensor([0, 1, 2])
    loss = cf_loss(z, c)
    assert torch.isfinite(loss).all()
    assert loss[0] > 40 and loss[2] < 1e-3  # p_c = 1 -> large (1e-20 floor), p_c = 0 -> 0
    loss.sum().backward()
    assert torch.isfinite(z.grad).all()
    zm = torch.randn(3, 4, generator=gen(2), requires_grad=True)
    cf_loss(zm, torch.tensor([1, 3, 0])).sum().backward()
    assert zm.grad[0, 1] > 0 and zm.grad[1, 3] > 0 and zm.grad[2, 0] > 0  # descent lowers z_c


def test_cf_loss_code_form_cancels_in_fp32_where_the_stable_form_does_not():
    """z = (20, 0, 0), c = 0: 1 - p_c = 2e^-20 ~ 4e-9 is below fp32's resolution at 1, so the code's
    sum_k e^(z_k-M) - e^(z_c-M) is exactly 0 and its loss the 1e-20 floor, -log(1e-20) = 20 ln 10."""
    z, c = torch.tensor([[20.0, 0.0, 0.0]]), torch.tensor([0])
    exact = -math.log(2 * math.exp(-20) / (1 + 2 * math.exp(-20)))
    losses, norms = {}, {}
    for form in CF_FORMS:
        zg = z.clone().requires_grad_(True)
        loss = cf_loss(zg, c, form=form)
        loss.sum().backward()
        losses[form], norms[form] = float(loss.detach()), float(zg.grad.norm())
    assert losses["code"] == pytest.approx(20 * math.log(10), rel=1e-6)  # 46.0517
    assert losses["stable"] == pytest.approx(exact, rel=1e-6)  # 19.307
    assert norms["code"] > 1e10 and norms["stable"] < 2
    moderate = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    assert torch.allclose(cf_loss(moderate, torch.tensor([0, 2]), form="code"),
                          cf_loss(moderate, torch.tensor([0, 2]), form="stable"), atol=1e-5)
    with pytest.raises(ValueError):
        cf_loss(z, c, form="naive")


def test_cf_loss_two_classes_is_ce_against_the_other_class_in_both_forms():
    z = torch.tensor([[30.0, -30.0], [1.0, 2.0], [-5.0, 40.0]])
    c = torch.tensor([0, 1, 1])
    want = F.cross_entropy(z, 1 - c, reduction="none")
    assert float(want[0]) == pytest.approx(60.0, rel=1e-5)  # no 1e-20 floor: p_other = e^-60
    for form in CF_FORMS:
        assert torch.allclose(cf_loss(z, c, form=form), want, atol=1e-5)


def test_cf_loss_uniform_variants():
    z, c = torch.randn(4, 5, generator=gen(3)), torch.tensor([0, 1, 2, 4])
    logp = z.log_softmax(1)
    assert torch.allclose(cf_loss(z, c, "uni"), -logp.mean(1), atol=1e-6)
    others = torch.ones_like(z).scatter(1, c[:, None], 0).bool()
    assert torch.allclose(cf_loss(z, c, "uni_e"), -(logp * others).sum(1) / 4, atol=1e-6)
    with pytest.raises(ValueError):
        cf_loss(z, c, "channels")


# ---- LS and Mixup (§10.16) -----------------------------------------------------------------------------------

def test_label_smoothing():
    z, y = torch.randn(5, C, generator=gen(4)), torch.tensor([0, 1, 2, 1, 0])
    assert torch.allclose(label_smoothing_loss(z, y, 0.0), F.cross_entropy(z, y), atol=1e-6)
    assert torch.allclose(label_smoothing_loss(z, y, 0.2), F.cross_entropy(z, y, label_smoothing=0.2), atol=1e-6)
    assert torch.allclose(label_smoothing_loss(z, y, 1.0), -z.log_softmax(1).mean(), atol=1e-6)


def test_mixup_small_alpha_is_ce_on_one_pair():
    x, y = torch.randn(B, 3, S, S, generator=gen(5)), torch.tensor([0, 1, 2, 0])
    model = Linear()
    for seed in range(4):
        xm, ya, yb, lam = mixup(x, y, 1e-3, gen(seed))
        assert min(lam, 1 - lam) < 1e-6 and torch.equal(ya, y)
        z = model(xm)[0]
        target = ya if lam > 0.5 else yb
        assert torch.allclose(mixup_loss(z, ya, yb, lam), F.cross_entropy(z, target), atol=1e-5)
    xm, ya, yb, lam = mixup(x, y, 0.4, gen(9))
    assert 0 < lam < 1 and torch.equal(torch.sort(yb).values, torch.sort(y).values)
    perm = (xm - lam * x).flatten(1) / (1 - lam)
    assert any(torch.allclose(perm[0], x[j].flatten(), atol=1e-5) for j in range(B))
    again = mixup(x, y, 0.4, gen(9))
    assert again[3] == lam and torch.equal(again[0], xm)


# ---- Sal on a linear model (§10.8, C-2, C-3) -----------------------------------------------------------------

def _closed_form(w: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, hb: torch.Tensor, target: str, norm: str):
    wi = w.reshape(-1, 3, S, S)
    g = wi[y] if target == "per_sample" else wi[y].sum(0, keepdim=True).expand(len(y), -1, -1, -1)
    bg = (1 - mask).expand_as(g)
    sq = ((g * bg) ** 2)[hb]
    if norm == "mean_all":
        return sq.mean()
    return (sq.flatten(1).sum(1) / bg[hb].flatten(1).sum(1)).mean()


@pytest.mark.parametrize("target", ["per_sample", "batch_labels"])
@pytest.mark.parametrize("norm", ["mean_all", "bg_area"])
def test_sal_linear_closed_form_and_double_backprop(target, norm):
    model, b = Linear(), make_batch()
    logits, pen = sal_penalty(model, b["x"], b["y"], b["mask"], b["has_bbox"], target=target, norm=norm)
    assert torch.allclose(logits, model(b["x"])[0])
    ref = _closed_form(model.w, b["y"], b["mask"], b["has_bbox"], target, norm)
    assert torch.allclose(pen, ref, rtol=1e-5)
    (gw,) = torch.autograd.grad(pen, model.w)
    (gref,) = torch.autograd.grad(ref, model.w)
    assert gw.abs().sum() > 0 and torch.allclose(gw, gref, rtol=1e-4, atol=1e-10)


def test_sal_targets_differ_and_full_mask_gives_zero():
    model, b = Linear(), make_batch()
    args = (model, b["x"], b["y"], b["mask"], b["has_bbox"])
    assert not torch.allclose(sal_penalty(*args, target="per_sample")[1], sal_penalty(*args)[1])
    ones = torch.ones_like(b["mask"])
    for norm in ("mean_all", "bg_area"):
        assert sal_penalty(model, b["x"], b["y"], ones, b["has_bbox"], norm=norm)[1] == 0
    none = torch.zeros(B, dtype=torch.bool)
    assert sal_penalty(model, b["x"], b["y"], b["mask"], none)[1] == 0


# ---- CfaugMethod ---------------------------------------------------------------------------------------------

def test_method_validation_and_from_args():
    m = CfaugMethod.from_args({"cf": "mean", "f": "none", "sal": 1e-4})
    assert m.cf == "grey" and m.f is None and m.sal == 1e-4
    assert CfaugMethod.from_args(m.to_dict()) == m
    for bad in ({"mixup": 0.2, "cf": "grey"}, {"ls": 0.1, "f": "shuffle"}, {"ls": 0.1, "sal": 1.0},
                {"mixup": 0.2, "ls": 0.1}, {"cf": "blur"}, {"f": "grey"}, {"loss_norm": "mean"}, {"sal": -1.0},
                {"cf_form": "naive"}):
        with pytest.raises(ValueError):
            CfaugMethod.from_args(bad)
    with pytest.raises(ValueError):
        CfaugMethod.from_args({"cff": "grey"})


# ---- step_loss (§5.1, §10.2) ---------------------------------------------------------------------------------

def _parts_sum(parts: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.stack(list(parts.values())).sum()


def test_step_loss_joint_normalisation_closed_form():
    model, b = Linear(), make_batch()
    method = CfaugMethod(cf="grey", f="shuffle")
    g = gen(3)
    total, parts = step_loss(model, b, method, g)
    idx = b["has_bbox"].nonzero(as_tuple=True)[0]
    x_cf = counterfactual("grey", b["x"][idx], b["mask"][idx], gen())
    x_f = factual("shuffle", b["x"][idx], b["mask"][idx], b["y"][idx], gen(3))
    z = model(torch.cat([b["x"], x_cf, x_f]))[0]
    k = len(idx)
    ce = F.cross_entropy(z[:B], b["y"], reduction="sum") + F.cross_entropy(z[B + k:], b["y"][idx], reduction="sum")
    cfl = -torch.log(1 - z[B:B + k].softmax(1).gather(1, b["y"][idx, None])[:, 0]).sum()
    n = B + 2 * k
    assert torch.allclose(total, (ce + cfl) / n, rtol=1e-5)
    assert torch.allclose(parts["ce"], ce / n, rtol=1e-5) and torch.allclose(parts["cf"], cfl / n, rtol=1e-5)
    sep, sparts = step_loss(model, b, CfaugMethod(cf="grey", f="shuffle", loss_norm="separate"), gen(3))
    ce_o = F.cross_entropy(z[:B], b["y"])
    ce_f = F.cross_entropy(z[B + k:], b["y"][idx])
    assert torch.allclose(sep, ce_o + ce_f + cfl / k, rtol=1e-5)
    assert set(sparts) == {"ce", "f", "cf"} and torch.allclose(_parts_sum(sparts), sep)


def test_step_loss_without_cf_or_eligible_rows_is_plain_ce():
    model, b = Linear(), make_batch()
    plain = F.cross_entropy(model(b["x"])[0], b["y"])
    assert torch.allclose(step_loss(model, b, CfaugMethod(), gen())[0], plain)
    nob = make_batch([False] * B)
    for method in (CfaugMethod(cf="random", f="random"), CfaugMethod(cf="tile", sal=10.0)):
        total, parts = step_loss(model, nob, method, gen())
        assert torch.allclose(total, plain, rtol=1e-6) and torch.allclose(parts["ce"], plain, rtol=1e-6)
    idx = b["has_bbox"].nonzero(as_tuple=True)[0]
    x_f = factual("random", b["x"][idx], b["mask"][idx], b["y"][idx], gen(4))
    mean_all = F.cross_entropy(model(torch.cat([b["x"], x_f]))[0], torch.cat([b["y"], b["y"][idx]]))
    assert torch.allclose(step_loss(model, b, CfaugMethod(f="random"), gen(4))[0], mean_all, rtol=1e-6)


def test_step_loss_sal_and_cagan():
    model, b = Linear(), make_batch()
    method = CfaugMethod(cf="cagan", sal=10.0, sal_target="per_sample")
    total, parts = step_loss(model, b, method, gen())
    idx = b["has_bbox"].nonzero(as_tuple=True)[0]
    logits, pen = sal_penalty(model, b["x"], b["y"], b["mask"], b["has_bbox"], target="per_sample")
    z_cf = model(b["cagan"][idx])[0]
    n = B + len(idx)
    exp_ce = F.cross_entropy(logits, b["y"], reduction="sum") / n
    exp_cf = cf_loss(z_cf, b["y"][idx]).sum() / n
    assert torch.allclose(parts["sal"], 10 * pen) and torch.allclose(parts["ce"], exp_ce)
    assert torch.allclose(total, exp_ce + exp_cf + 10 * pen, rtol=1e-5)
    total.backward()
    assert model.w.grad.abs().sum() > 0
    missing = {k: v for k, v in b.items() if k != "cagan"}
    with pytest.raises(ValueError):
        step_loss(model, missing, CfaugMethod(cf="cagan"), gen())


@pytest.mark.parametrize("method", [CfaugMethod(cf="random", f="shuffle", sal=1.0),
                                    CfaugMethod(cf="tile", f="mrand", tile_bbox=True),
                                    CfaugMethod(cf="shuffle", f="fgsm", shuffle="region"),
                                    CfaugMethod(mixup=0.2), CfaugMethod(ls=0.1)])
def test_step_loss_deterministic_and_parts_detached(method):
    model, b = Linear(), make_batch()
    model.train()
    a, pa = step_loss(model, b, method, gen(11))
    c, pc = step_loss(model, b, method, gen(11))
    assert torch.equal(a, c) and pa.keys() == pc.keys()
    assert a.requires_grad and all(not v.requires_grad for v in pa.values())
    assert torch.allclose(_parts_sum(pa), a.detach())
    assert model.training and math.isfinite(float(a.detach()))
    assert all(p.grad is None for p in model.parameters())


def test_step_loss_mixup_and_ls_match_their_losses():
    model, b = Linear(), make_batch()
    xm, ya, yb, lam = mixup(b["x"], b["y"], 0.2, gen(2))
    assert torch.allclose(step_loss(model, b, CfaugMethod(mixup=0.2), gen(2))[0],
                          mixup_loss(model(xm)[0], ya, yb, lam))
    assert torch.allclose(step_loss(model, b, CfaugMethod(ls=0.1), gen())[0],
                          label_smoothing_loss(model(b["x"])[0], b["y"], 0.1))
