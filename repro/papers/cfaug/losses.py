"""cfaug losses: the CF loss, Sal (GradMask), Mixup/LS and the whole training-step loss (spec §5.1-5.6, §11).

Models follow the repro convention and return `(logits, aux)`; only `model(x)[0]` is used here. Losses are
computed in float32 (the engine's step may run `step_loss` in fp16, C-10; the 1e-20 of the CF loss needs fp32).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.methods import register_method
from repro.papers.cfaug.generators import CF_INFILLS, F_INFILLS, SHUFFLE_MODES, counterfactual, factual

CF_LOSS_KINDS = ("logp", "uni", "uni_e")
CF_FORMS = ("stable", "code")  # C-27: how `logp` computes 1 - p_c
SAL_TARGETS = ("batch_labels", "per_sample")
SAL_NORMS = ("mean_all", "bg_area")
LOSS_NORMS = ("joint", "separate")


def cf_loss(logits: Tensor, c: Tensor, kind: str = "logp", form: str = "stable") -> Tensor:
    """Per-sample loss of CF images of class c (§5.2), shape (N,).

    `logp` (paper/code): -log(1 - softmax(z)_c) = -[log(R + 1e-20) - log(sum_k e^(z_k-M) + 1e-20)], M = max_k z_k,
    with R = 1 - p_c unnormalised: `form` (C-27) "stable" R = sum_{k!=c} e^(z_k-M) (spec §5.2), "code"
    R = sum_k e^(z_k-M) - e^(z_c-M), which cancels to 0 in fp32 once 1 - p_c < ~6e-8 (loss 20 ln 10 + log
    sum_k e^(z_k-M), ~46.05, with gradients ~1e20 e^(z_k-M)). Two classes: CE against the other class (both forms).
    `uni`: -(1/C) sum_k log p_k; `uni_e`: -(1/(C-1)) sum_{k!=c} log p_k.
    """
    if form not in CF_FORMS:
        raise ValueError(f"cf_loss form must be one of {CF_FORMS}, not {form!r}")
    z = logits.float()
    is_c = F.one_hot(c, z.shape[1]).bool()
    if kind == "logp":
        if z.shape[1] == 2:
            return F.cross_entropy(z, 1 - c, reduction="none")
        e = (z - z.amax(1, keepdim=True)).exp()
        total = e.sum(1)
        rest = e.masked_fill(is_c, 0).sum(1) if form == "stable" else total - e[is_c]
        return -((rest + 1e-20).log() - (total + 1e-20).log())
    logp = z.log_softmax(1)
    if kind == "uni":
        return -logp.mean(1)
    if kind == "uni_e":
        return -logp.masked_fill(is_c, 0).sum(1) / (z.shape[1] - 1)
    raise ValueError(f"cf_loss kind must be one of {CF_LOSS_KINDS}, not {kind!r}")


def label_smoothing_loss(logits: Tensor, y: Tensor, eps: float) -> Tensor:
    """Batch mean of eps*(1/C)sum_k(-log p_k) + (1-eps)*(-log p_y) (§5.6; the eps mass also covers y)."""
    logp = logits.float().log_softmax(1)
    nll = -logp.gather(1, y[:, None])[:, 0]
    return (eps * -logp.mean(1) + (1 - eps) * nll).mean()


def mixup(x: Tensor, y: Tensor, alpha: float, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor, float]:
    """One lam ~ Beta(alpha, alpha) per batch (lam = 1 for alpha <= 0) and a permutation pi: (lam x + (1-lam) x_pi,
    y, y_pi, lam). The Beta draw uses numpy seeded from `gen` (torch has no seeded Beta sampler)."""
    seed = int(torch.randint(2**62, (1,), generator=gen, device=gen.device))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha)) if alpha > 0 else 1.0
    perm = torch.randperm(x.shape[0], generator=gen, device=gen.device).to(x.device)
    return lam * x + (1 - lam) * x[perm], y, y[perm], lam


def mixup_loss(logits: Tensor, y: Tensor, y_perm: Tensor, lam: float) -> Tensor:
    """lam*CE(z, y) + (1-lam)*CE(z, y_pi), batch means (§5.6)."""
    z = logits.float()
    return lam * F.cross_entropy(z, y) + (1 - lam) * F.cross_entropy(z, y_perm)


def sal_penalty(model: nn.Module, x: Tensor, y: Tensor, mask: Tensor, has_bbox: Tensor, *,
                target: str = "batch_labels", norm: str = "mean_all") -> tuple[Tensor, Tensor]:
    """GradMask "Sal" on the B originals (§5.5): (logits of x from the same forward, unweighted penalty).

    g = dT/dx with create_graph=True (double backprop). `target` (C-2): `batch_labels` (code)
    T = sum_i sum_j z_i[y_j]; `per_sample` (paper) T = sum_i z_i[y_i]. `norm` (C-3) over the has_bbox images:
    `mean_all` (code) mean of (g*(1-m))^2 over n*3*H*W; `bg_area` (paper) per image
    sum (g^2 (1-m)) / sum (1-m), both sums over the 3*H*W input entries (0 for an image with no background),
    then the mean over images. No has_bbox image -> penalty 0.
    """
    if target not in SAL_TARGETS or norm not in SAL_NORMS:
        raise ValueError(f"sal target must be in {SAL_TARGETS} and norm in {SAL_NORMS}; got {target!r}, {norm!r}")
    xg = x.detach().requires_grad_(True)
    logits = model(xg)[0]
    if not bool(has_bbox.any()):
        return logits, logits.new_zeros((), dtype=torch.float32)
    z = logits.float()
    if target == "per_sample":
        t = z.gather(1, y[:, None]).sum()
    else:
        t = (z * torch.bincount(y, minlength=z.shape[1]).to(z.dtype)[None, :]).sum()
    (g,) = torch.autograd.grad(t, xg, create_graph=True)
    g, bg = g[has_bbox].float(), (1 - mask[has_bbox]).float().expand_as(g[has_bbox])
    sq = (g * bg) ** 2
    if norm == "mean_all":
        return logits, sq.mean()
    return logits, (sq.flatten(1).sum(1) / bg.flatten(1).sum(1).clamp(min=1)).mean()


def _name(value: str | None) -> str | None:
    """Code spellings: 'none'/'' -> None, CF 'mean' -> 'grey'."""
    if value in (None, "", "none"):
        return None
    return "grey" if value == "mean" else value


@dataclass(frozen=True)
class CfaugMethod:
    """One cfaug training objective (§2 columns, §8 switches); 0 turns sal/mixup/ls off.

    cf in CF_INFILLS or None, f in F_INFILLS or None, sal = lambda, mixup = alpha, ls = eps, cf_loss kind and
    cf_form (C-27), fgsm_eps (normalised units, C-13), sal_target (C-2), sal_norm (C-3), loss_norm (C-4), shuffle
    (C-5), tile_x0_bug (C-6), tile_bbox (the IN-9 Tile path; True for IN-9 only), cf_rectangle (CF removes the
    mask's bounding rectangle, IN-9 and WB; False for CCT, whose mask is its boxes' union, C-14). Mixup/LS cannot
    combine with CF/F/Sal, nor with each other.
    """

    cf: str | None = None
    f: str | None = None
    sal: float = 0.0
    mixup: float = 0.0
    ls: float = 0.0
    cf_loss: str = "logp"
    cf_form: str = "stable"
    fgsm_eps: float = 0.5
    sal_target: str = "batch_labels"
    sal_norm: str = "mean_all"
    loss_norm: str = "joint"
    shuffle: str = "batch_all"
    tile_x0_bug: bool = True
    tile_bbox: bool = False
    cf_rectangle: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "cf", _name(self.cf))
        object.__setattr__(self, "f", _name(self.f))
        checks = [("cf", self.cf, (None, *CF_INFILLS)), ("f", self.f, (None, *F_INFILLS)),
                  ("cf_loss", self.cf_loss, CF_LOSS_KINDS), ("cf_form", self.cf_form, CF_FORMS),
                  ("sal_target", self.sal_target, SAL_TARGETS),
                  ("sal_norm", self.sal_norm, SAL_NORMS), ("loss_norm", self.loss_norm, LOSS_NORMS),
                  ("shuffle", self.shuffle, SHUFFLE_MODES)]
        for key, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"cfaug {key}={value!r}; choose from {allowed}")
        if min(self.sal, self.mixup, self.ls) < 0 or self.ls > 1 or self.fgsm_eps <= 0:
            raise ValueError("cfaug needs sal, mixup >= 0, 0 <= ls <= 1 and fgsm_eps > 0")
        others = bool(self.cf or self.f or self.sal > 0)
        if (self.mixup > 0 and self.ls > 0) or ((self.mixup > 0 or self.ls > 0) and others):
            raise ValueError("cfaug: mixup and label smoothing cannot be combined with CF, F, Sal or each other")

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> CfaugMethod:
        """Build from a plain dict of field names (unknown keys raise ValueError)."""
        known = {f.name for f in fields(cls)}
        unknown = set(args) - known
        if unknown:
            raise ValueError(f"unknown cfaug method keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(args))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ce_sum(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits.float(), y, reduction="sum")


def _safe_mean(total: Tensor, n: int) -> Tensor:
    return total / max(n, 1)


def step_loss(model: nn.Module, batch: Mapping[str, Tensor], method: CfaugMethod,
              gen: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
    """Total training loss of one batch (§5.1) and its detached parts, which sum to the total.

    CF then F images are generated from the same augmented originals, for the has_bbox rows only (C-15); F(FGSM)
    attacks the current weights. Without Sal one forward on all N = B + K_cf + K_f images; with Sal the originals'
    logits come from the Sal forward and the CF/F images get a second forward. `joint` (code, C-4):
    ce = sum of CE over originals and F images / N, cf = sum of cf_loss / N (without CF images this is the plain
    mean CE; the batch always holds its B originals, so the code's only-CF case cannot arise); `separate`
    (paper): ce, f, cf each the mean over its own images. sal = lambda * penalty. Mixup / LS replace the whole
    loss. Parts: "ce", plus "cf", "f", "sal" where they apply.
    """
    x, y = batch["x"], batch["y"]
    if method.mixup > 0:
        xm, ya, yb, lam = mixup(x, y, method.mixup, gen)
        loss = mixup_loss(model(xm)[0], ya, yb, lam)
        return loss, {"ce": loss.detach()}
    if method.ls > 0:
        loss = label_smoothing_loss(model(x)[0], y, method.ls)
        return loss, {"ce": loss.detach()}

    mask, has_bbox = batch["mask"], batch["has_bbox"].bool()
    idx = has_bbox.nonzero(as_tuple=True)[0]
    k = int(idx.numel()) if (method.cf or method.f) else 0
    extra: list[Tensor] = []
    if k and method.cf:
        if method.cf == "cagan" and "cagan" not in batch:
            raise ValueError("CF 'cagan' needs a batch built with CAGAN infills (key 'cagan')")
        cagan = batch["cagan"][idx] if method.cf == "cagan" else None
        extra.append(counterfactual(method.cf, x[idx], mask[idx], gen, cagan=cagan, shuffle=method.shuffle,
                                    tile_x0_bug=method.tile_x0_bug, tile_bbox=method.tile_bbox,
                                    rectangle=method.cf_rectangle))
    if k and method.f:
        extra.append(factual(method.f, x[idx], mask[idx], y[idx], gen, model=model, eps=method.fgsm_eps,
                             shuffle=method.shuffle, tile_x0_bug=method.tile_x0_bug))

    penalty = None
    if method.sal > 0:
        logits_o, penalty = sal_penalty(model, x, y, mask, has_bbox, target=method.sal_target,
                                        norm=method.sal_norm)
        logits_x = model(torch.cat(extra))[0] if extra else logits_o[:0]
    else:
        logits = model(torch.cat([x, *extra]))[0]
        logits_o, logits_x = logits[: len(x)], logits[len(x):]
    k_cf, k_f = (k if method.cf else 0), (k if method.f else 0)
    logits_cf, logits_f = logits_x[:k_cf], logits_x[k_cf:]
    y_k = y[idx]

    parts: dict[str, Tensor] = {}
    ce_o, ce_f = _ce_sum(logits_o, y), _ce_sum(logits_f, y_k[:k_f])
    cf_sum = cf_loss(logits_cf, y_k[:k_cf], method.cf_loss, method.cf_form).sum()
    if method.loss_norm == "joint":
        n = len(x) + k_cf + k_f
        parts["ce"] = (ce_o + ce_f) / n
        if method.cf:
            parts["cf"] = cf_sum / n
    else:
        parts["ce"] = ce_o / len(x)
        if method.f:
            parts["f"] = _safe_mean(ce_f, k_f)
        if method.cf:
            parts["cf"] = _safe_mean(cf_sum, k_cf)
    if penalty is not None:
        parts["sal"] = method.sal * penalty
    total = torch.stack(list(parts.values())).sum()
    return total, {name: v.detach() for name, v in parts.items()}


@register_method("cfaug")
class CfaugObjective:
    """cfaug's method as the engine's objective (`repro.engine.Step`): `step_loss` of one batch (a dict on the
    device) with the run's generator, for the settings `method`."""

    def __init__(self, method: CfaugMethod):
        self.method = method

    def __call__(self, model: nn.Module, batch: Mapping[str, Tensor], gen: torch.Generator
                 ) -> tuple[Tensor, dict[str, Tensor]]:
        return step_loss(model, batch, self.method, gen)
