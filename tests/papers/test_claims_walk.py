"""Every claim of the four papers' report modules: its sentence is quoted from the paper's text, and its rule fails
on values that contradict it (each comparison in turn for a claim tested across seeds; a hand-made frame for each
rule on values without seeds)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from repro.papers import PAPER_NAMES, STUDIES
from repro.report.claims import FAILS, HOLDS, Claim, Compare, RuleClaim

ROOT = Path(__file__).resolve().parents[2]
PAPERS = ROOT.parent / "shared" / "papers"


def _walk(value: Any, label: str) -> list[tuple[str, Claim | RuleClaim]]:
    if isinstance(value, Claim | RuleClaim):
        return [(label, value)]
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in _walk(v, f"{label}[{k}]")]
    return []


def all_claims() -> list[tuple[str, str, Claim | RuleClaim]]:
    """(paper, module.NAME[label], claim) of every claim held by a module-level constant of a report module."""
    out = []
    for paper in PAPER_NAMES:
        for path in sorted((ROOT / "repro" / "papers" / paper).glob("report*.py")):
            module = importlib.import_module(f"repro.papers.{paper}.{path.stem}")
            for name, value in vars(module).items():
                if name.isupper():
                    out += [(paper, f"{path.stem}.{label}", c) for label, c in _walk(value, name)]
    return out


CLAIMS = all_claims()
TESTED = [(label, c) for _, label, c in CLAIMS if isinstance(c, Claim)]
RULES = [(label, c) for _, label, c in CLAIMS if isinstance(c, RuleClaim)]


def test_the_walk_finds_the_claims_of_every_paper():
    assert {paper for paper, _, _ in CLAIMS} == set(PAPER_NAMES) - set(STUDIES) and len(TESTED) > 50 and len(RULES) == 9


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.skipif(not PAPERS.exists(), reason="../shared/papers not beside the checkout")
def test_every_claim_quotes_its_papers_sentence():
    texts = {p: _normalised((PAPERS / f"{p}.txt").read_text()) for p in PAPER_NAMES if p not in STUDIES}
    missing = [label for paper, label, c in CLAIMS if _normalised(c.sentence) not in texts[paper]]
    assert not missing, missing
    quotes = [(label, t.quote) for paper, label, c in CLAIMS if isinstance(c, Claim) for t in c.tests
              if t.quote and _normalised(t.quote) not in _normalised(c.sentence)]
    assert not quotes, quotes


LOW, HIGH = np.array([0.10, 0.11, 0.12]), np.array([0.90, 0.91, 0.92])


def contradicting(claim: Claim, broken: Compare) -> dict[Any, np.ndarray]:
    """Seeds for every cell the claim reads (0.5 with spread), with `broken`'s cells set against its rule."""
    cells = {k for t in claim.tests for k in (t.left, t.right) if not isinstance(k, float | int)}
    seeds = {k: np.array([0.49, 0.50, 0.51]) for k in cells}
    if isinstance(broken.right, float | int):
        seeds[broken.left] = broken.right + (-1 if broken.op == ">" else 1) + LOW
    else:
        seeds[broken.left], seeds[broken.right] = (HIGH, LOW) if broken.op == "<" else (LOW, HIGH)
    return seeds


@pytest.mark.parametrize("label,claim", TESTED, ids=[label for label, _ in TESTED])
def test_each_comparison_of_a_claim_can_fail(label, claim):
    for broken in claim.tests:
        assert claim.evaluate(contradicting(claim, broken)).result == FAILS, (label, broken.rule())


def _overlap(rows: list[tuple[str, float, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["annotation", "frac", "tau", "precision", "recall"])


TAUS = (0.01, 0.05)
RANDOM = [("rnd", np.nan, t, 0.02, 0.02 + t) for t in TAUS]
GOOD_TEACHERS = [(f"{f:g}", f, t, 0.5 - t - f / 10, 0.3 + t + f / 10) for f in (0.01, 0.1) for t in TAUS]
FIG8_FAILING = {  # rule -> a frame against it
    "_beats_random": _overlap(RANDOM + [("0.1", 0.1, t, 0.01, 0.5) for t in TAUS]),
    "_recall_rises": _overlap(RANDOM + [("0.1", 0.1, t, 0.5 - t, 0.4) for t in TAUS]),
    "_precision_falls": _overlap(RANDOM + [("0.1", 0.1, t, 0.4 + t, 0.3 + t) for t in TAUS]),
    "_teachers_close": _overlap(RANDOM + [("0.01", 0.01, t, 0.03, 0.03 + t) for t in TAUS]
                                + [("0.1", 0.1, t, 0.6 - t, 0.5 + t) for t in TAUS]),
}


def _students(rows: list[tuple[str, str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["arch", "annotation", "tau", "metric_mean", "delta_mean"])


ARCHS = ("vgg16", "resnet18", "densenet121")
FIG9_FAILING = {  # rule -> (a per-(arch, annotation, tau) frame against it, the teachers' clean-test metric)
    "_little_sensitivity": _students([("vgg16", "rnd", 0.01, 0.8, -0.05), ("vgg16", "10%", 0.01, 0.8, -0.3)]),
    "_teachers_alike": _students([("vgg16", "rnd", 0.01, 0.5, -0.3), ("vgg16", "10%", 0.01, 0.9, 0.0),
                                  ("vgg16", "1%", 0.01, 0.55, 0.0)]),
    "_students_beat_teachers": _students([("vgg16", "10%", 0.01, 0.5, 0.0)]),
    "_random_spurious": _students([(a, n, np.nan if n == "GT" else 0.01, 0.8, d)
                                   for a in ARCHS for n, d in (("GT", -0.2), ("rnd", 0.0))]),
    "_tau_raises_knee_sensitivity": _students([("vgg16", "10%", t, 0.5, d) for t, d in ((0.01, 0.3), (0.05, 0.1))]),
}
TEACHER_METRIC = {"10%": 0.9, "1%": 0.9}


@pytest.mark.parametrize("label,claim", RULES, ids=[label for label, _ in RULES])
def test_each_rule_without_seeds_fails_on_a_frame_against_it(label, claim):
    name = claim.check.__name__
    assert name in FIG8_FAILING | FIG9_FAILING, f"{label}: add a frame against {name} here"
    args = (FIG8_FAILING[name],) if name in FIG8_FAILING else (FIG9_FAILING[name], TEACHER_METRIC)
    assert claim.evaluate(*args).result == FAILS, label


def test_the_figure8_rules_hold_on_good_teachers():
    frame = _overlap(RANDOM + GOOD_TEACHERS)
    assert [c.evaluate(frame).result for label, c in RULES if c.check.__name__ in FIG8_FAILING] == [HOLDS] * 4
