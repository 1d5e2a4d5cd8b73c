"""The shared claims: tests across seeds against scipy, the verdicts (holds / not significant / one seed / does not
hold / n/a), profile-aware notes, and the `<artefact>_claims.csv` with each claim's sentence, rule and numbers."""

import math

import pandas as pd
import pytest
from scipy import stats

from repro.papers import Context
from repro.report.claims import (CLAIM_COLUMNS, FAILS, HOLDS, NA, ONE_SEED_FAILS, ONE_SEED_HOLDS, WEAK, Claim,
                                 RuleClaim, Compare, evaluate_claims, report_claims, shortfall)

SENTENCE = "A beats B, and C scores 0.5."
A, B = [0.80, 0.85, 0.90], [0.50, 0.55, 0.52]


def test_a_comparison_is_a_one_sided_welch_test():
    ev = Compare("A", ">", "B").evaluate({"A": A, "B": B})
    p = stats.ttest_ind(A, B, equal_var=False, alternative="greater").pvalue
    assert ev.result == HOLDS and ev.p == pytest.approx(p) and ev.effect == pytest.approx(sum(A) / 3 - sum(B) / 3)
    assert Compare("A", "<", "B").evaluate({"A": A, "B": B}).result == FAILS


def test_overlapping_seeds_are_not_significant_and_one_seed_is_said():
    overlap = {"A": [0.60, 0.40, 0.75], "B": [0.50, 0.55, 0.45]}
    assert Compare("A", ">", "B").evaluate(overlap).result == WEAK
    assert Compare("A", ">", "B").evaluate({"A": [0.9], "B": [0.5]}).result == ONE_SEED_HOLDS
    assert Compare("A", "<", "B").evaluate({"A": [0.9], "B": [0.5]}).result == ONE_SEED_FAILS
    assert Compare("A", ">", "B").evaluate({"A": A, "B": [math.nan]}).result == NA


def test_a_threshold_is_a_one_sample_test_and_must_quote_its_words():
    ev = Compare("C", "~", 0.5, "scores 0.5").evaluate({"C": [0.49, 0.51, 0.50]})
    assert ev.result == HOLDS and ev.p == pytest.approx(stats.ttest_1samp([0.49, 0.51, 0.50], 0.5).pvalue)
    assert Compare("C", "~", 0.5, "scores 0.5").evaluate({"C": [0.9, 0.91, 0.92]}).result == FAILS
    assert Compare("C", "~", 0.5, "scores 0.5").evaluate({"C": [0.5, 0.5]}).result == HOLDS  # no spread, equal
    assert Compare("C", "<", 0.7, "below 0.7").evaluate({"C": [0.5, 0.5]}).result == HOLDS  # no spread, below
    with pytest.raises(ValueError, match="quote"):
        Compare("C", ">", 0.5)


def test_a_claim_gets_its_weakest_test():
    claim = Claim(SENTENCE, (Compare("A", ">", "B"), Compare("C", "~", 0.5, "scores 0.5")))
    assert claim.evaluate({"A": A, "B": B, "C": [0.49, 0.51, 0.5]}).result == HOLDS
    worst = claim.evaluate({"A": A, "B": B, "C": [0.9, 0.91, 0.92]})
    assert worst.result == FAILS and "A 0.85 (n=3) vs B" in worst.numbers and "C 0.91" in worst.numbers
    assert claim.evaluate({"A": A, "B": B}).result == NA


def test_failure_notes_depend_on_the_profile():
    paper = Context("tap", "paper", 1, "code", {}, None)
    quick = Context("tap", "quick", 1, "code", {}, None)
    assert shortfall(quick, FAILS, "budget") == "budget"
    assert "a finding, not a budget problem" in shortfall(paper, FAILS, "budget")
    assert shortfall(paper, HOLDS, "budget") == ""


def test_report_claims_writes_sentence_rule_numbers_and_verdict(tmp_path, capsys):
    ctx = Context("tap", "quick", 1, "code", {}, tmp_path)
    claims = {"A beats B": Claim(SENTENCE, (Compare("A", ">", "B"),)),
              "C scores 0.5": Claim(SENTENCE, (Compare("C", "~", 0.5, "scores 0.5"),)),
              "D beats B": Claim(SENTENCE, (Compare("D", ">", "B"),))}
    checked = evaluate_claims(claims, {"A": A, "B": B, "C": [0.9, 0.91, 0.92]})
    checked["trend"] = (RuleClaim(SENTENCE, "a rule", lambda: False), RuleClaim(SENTENCE, "a rule", lambda: False)
                        .evaluate())
    path = report_claims(ctx, "figure5", checked, {"profile": "quick"}, {"C scores 0.5": "needs the full data"})
    assert path == tmp_path / "tables" / "tap" / "figure5_claims.csv"
    table = pd.read_csv(path, keep_default_na=False)
    assert list(table.columns) == CLAIM_COLUMNS
    assert table["result"].tolist() == [HOLDS, FAILS, NA, FAILS]
    assert (table["sentence"] == SENTENCE).all() and "0.5 (\"scores 0.5\")" in table.loc[1, "rule"]
    assert table.loc[1, "note"] == "needs the full data" and set(table["profile"]) == {"quick"}
    assert path.with_suffix(".json").exists()
    out = capsys.readouterr().out
    assert "holds (effect +0.3267, p=" in out and "does not hold" in out and SENTENCE in out
