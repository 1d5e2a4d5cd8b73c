"""A cfaug run's objective settings (`CfaugMethod`: spec §2 columns, §8 switches) and the choices they allow; the
settings name the terms (`repro.papers.cfaug.terms`) that cfaug's objective composes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from repro.papers.cfaug.generators import CF_INFILLS, F_INFILLS, SHUFFLE_MODES

CF_LOSS_KINDS = ("logp", "uni", "uni_e")
CF_FORMS = ("stable", "code")  # C-27: how `logp` computes 1 - p_c
SAL_TARGETS = ("batch_labels", "per_sample")
SAL_NORMS = ("mean_all", "bg_area")
LOSS_NORMS = ("joint", "separate")


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
    combine with CF/F/Sal, nor with each other. `terms`: further registered terms by registry name with their
    arguments (`{"cfaug.<name>": {...}}`, `repro.papers.cfaug.terms`), none in the paper's runs.
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
    terms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

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

    def term_specs(self) -> list[tuple[str, dict[str, Any]]]:
        """The registry names and arguments of the objective's terms: the paper's (CF, F, Sal, Mixup, LS, in the
        order CF images are made before F images, spec §11), then `terms`."""
        paper = [("cfaug.cf", self.cf), ("cfaug.f", self.f), ("cfaug.sal", self.sal > 0),
                 ("cfaug.mixup", self.mixup > 0), ("cfaug.ls", self.ls > 0)]
        return [(name, {}) for name, on in paper if on] + [(n, dict(a)) for n, a in self.terms.items()]
