"""A paper's claims as evidence: each claim quotes its sentence from the paper and states a rule; a claim comparing
methods or settings is tested across seeds (one-sided Welch, scipy.stats), and its verdict, effect and p are printed
and written to `<artefact>_claims.csv` beside the artefact, so that every profile says which findings it shows."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from repro.papers import Context
from repro.report.artefacts import output_path
from repro.report.tables import ALPHA, write_table

HOLDS = "holds"
WEAK = "direction holds but not significant at this n"
ONE_SEED_HOLDS = "one seed: direction holds, not tested"
ONE_SEED_FAILS = "one seed: direction does not hold, not tested"
FAILS = "does not hold"
NA = "n/a"
VERDICTS = (HOLDS, WEAK, ONE_SEED_HOLDS, ONE_SEED_FAILS, FAILS, NA)  # best to worst: a claim gets its worst test's
CLAIM_COLUMNS = ["claim", "sentence", "rule", "numbers", "effect", "p", "result", "note", "profile"]
Seeds = Mapping[Hashable, Sequence[float]]  # per-seed values of each cell a claim reads


@dataclass(frozen=True)
class Evidence:
    """A verdict (one of VERDICTS), the effect (difference of means, in the rule's direction's units) and p of the
    test that decided it, and the numbers read."""

    result: str
    effect: float = float("nan")
    p: float = float("nan")
    numbers: str = ""


def _name(key: Hashable) -> str:
    return " ".join(map(str, key)) if isinstance(key, tuple) else str(key)


@dataclass(frozen=True)
class Compare:
    """`left <op> right` across seeds: `right` is another cell (two-sample Welch, scipy.stats.ttest_ind,
    equal_var=False) or a number the claim's sentence gives (one-sample t-test, scipy.stats.ttest_1samp), with the
    words that give it in `quote`. `>` and `<` are one-sided (holds: direction and p < ALPHA); `~` ("similar to",
    "scores 0.5") is two-sided and holds unless the difference is significant."""

    left: Hashable
    op: Literal[">", "<", "~"]
    right: Hashable | float
    quote: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.right, float | int) and not self.quote:
            raise ValueError(f"{self.rule()}: a threshold must quote the words of the sentence that give it")

    def rule(self) -> str:
        words = {">": "above", "<": "below", "~": "similar to"}[self.op]
        right = f"{self.right:g} (\"{self.quote}\")" if isinstance(self.right, float | int) else _name(self.right)
        return f"{_name(self.left)} {words} {right}"

    def evaluate(self, seeds: Seeds) -> Evidence:
        from scipy import stats

        left = _finite(seeds.get(self.left))
        number = isinstance(self.right, float | int)
        right = np.array([float(self.right)]) if number else _finite(seeds.get(self.right))
        if not len(left) or not len(right):
            return Evidence(NA, numbers=f"{self.rule()}: not run")
        effect = float(left.mean() - right.mean())
        numbers = (f"{_name(self.left)} {left.mean():.4g} (n={len(left)}) vs "
                   + (f"{float(self.right):g}" if number else f"{_name(self.right)} {right.mean():.4g} (n={len(right)})"))
        direction = {">": effect > 0, "<": effect < 0, "~": True}[self.op]
        if len(left) < 2 or (not number and len(right) < 2):
            return Evidence(ONE_SEED_HOLDS if direction else ONE_SEED_FAILS, effect, numbers=numbers)
        alternative = {">": "greater", "<": "less", "~": "two-sided"}[self.op]
        with warnings.catch_warnings():  # scipy warns on seeds without spread; their p is still right (0 or NaN)
            warnings.simplefilter("ignore", RuntimeWarning)
            result = (stats.ttest_1samp(left, float(self.right), alternative=alternative) if number else
                      stats.ttest_ind(left, right, equal_var=False, alternative=alternative))
        p = float(result.pvalue)
        numbers += f", p={p:.3g}"
        if self.op == "~":  # no spread and equal means gives NaN: not different
            return Evidence(FAILS if p < ALPHA else HOLDS, effect, p, numbers)
        return Evidence(FAILS if not direction else HOLDS if p < ALPHA else WEAK, effect, p, numbers)


def _finite(values: Sequence[float] | None) -> np.ndarray:
    array = np.asarray([] if values is None else values, dtype=float)
    return array[np.isfinite(array)]


def weakest(evidence: Sequence[Evidence]) -> Evidence:
    """The evidence of several tests that all must hold: the worst verdict (largest p among equals); the numbers of
    all (an intersection-union test: the claim's p is that of its weakest test)."""
    worst = max(evidence, key=lambda e: (VERDICTS.index(e.result), e.p if e.p == e.p else -1.0))
    return Evidence(worst.result, worst.effect, worst.p, "; ".join(e.numbers for e in evidence))


@dataclass(frozen=True)
class Claim:
    """A claim of the paper, quoted (`sentence`), tested across seeds: every test must hold."""

    sentence: str
    tests: tuple[Compare, ...]

    def rule(self) -> str:
        return (" and ".join(t.rule() for t in self.tests) + f" (across seeds, alpha {ALPHA}: above / below one-sided "
                "Welch or one-sample t; similar: two-sided, holds unless significantly different)")

    def evaluate(self, seeds: Seeds) -> Evidence:
        return weakest([t.evaluate(seeds) for t in self.tests])


@dataclass(frozen=True)
class RuleClaim:
    """A claim of the paper, quoted, checked by a rule on values that have no seeds to test across (a trend over
    thresholds of one computation): `check(*data)` is True, False, or None where it cannot be read."""

    sentence: str
    rule_text: str
    check: Callable[..., bool | None]

    def rule(self) -> str:
        return self.rule_text

    def evaluate(self, *data: Any) -> Evidence:
        ok = self.check(*data)
        return Evidence(NA if ok is None else HOLDS if ok else FAILS)


Checked = dict[str, tuple[Claim | RuleClaim, Evidence]]  # claim label -> (claim, evidence)


def seeds_by(per_run: pd.DataFrame, keys: list[str], values: list[str]) -> dict[tuple, list[float]]:
    """Per cell `(*keys, value)` its per-seed values (one per run row of `per_run`)."""
    if per_run.empty or not set(keys) <= set(per_run.columns):
        return {}
    out: dict[tuple, list[float]] = {}
    for cell, group in per_run.groupby(keys, sort=False):
        cell = cell if isinstance(cell, tuple) else (cell,)
        for v in values:
            if v in group:
                out[(*cell, v)] = group[v].astype(float).tolist()
    return out


def evaluate_claims(claims: Mapping[str, Claim], seeds: Seeds) -> Checked:
    """Each claim's evidence on the per-seed values."""
    return {label: (claim, claim.evaluate(seeds)) for label, claim in claims.items()}


def shortfall(ctx: Context, result: str, why: str) -> str:
    """The note of a claim with verdict `result`: below the paper's profile, `why` it may not show; at the paper's
    profile none, and a claim that does not hold is a finding of this reproduction, not a budget problem."""
    if ctx.profile != "paper":
        return why
    return "does not hold at the paper's settings: a finding, not a budget problem" if result == FAILS else ""


def print_checks(checked: Checked, notes: Mapping[str, str]) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    for label, (claim, ev) in checked.items():
        colour = "green" if ev.result == HOLDS else "red" if ev.result == FAILS else "yellow"
        p = "" if ev.p != ev.p else f", p={ev.p:.3g}"
        effect = "" if ev.effect != ev.effect else f" (effect {ev.effect:+.4g}{p})"
        note = f" [dim]({escape(notes[label])})[/dim]" if notes.get(label) else ""
        console.print(f"[{colour}]{ev.result}[/]{effect}: {escape(label)}{note}\n  [dim]\"{escape(claim.sentence)}\" "
                      f"- {escape(claim.rule())}; {escape(ev.numbers)}[/dim]")


def report_claims(ctx: Context, artefact: str, checked: Checked, prov: dict[str, Any],
                  notes: Mapping[str, str] | None = None) -> Path:
    """Print the claims and write `tables/<paper>/<artefact>_claims.csv` (CLAIM_COLUMNS: the label, the paper's
    sentence, the rule, the numbers read, effect, p, verdict, note, profile) with the artefact's provenance;
    `notes[claim]` says why a claim cannot be shown or what it was read on."""
    notes = notes or {}
    print_checks(checked, notes)
    rows = [[label, claim.sentence, claim.rule(), ev.numbers, ev.effect, ev.p, ev.result, notes.get(label, ""),
             ctx.profile] for label, (claim, ev) in checked.items()]
    return write_table(pd.DataFrame(rows, columns=CLAIM_COLUMNS), output_path(ctx, f"{artefact}_claims", "table"),
                       prov)
