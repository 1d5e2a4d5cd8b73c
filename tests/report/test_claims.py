"""The shared claims writer: verdicts from rules, n/a for missing values, and the `<artefact>_claims.csv`."""

import math

import pandas as pd

from repro.papers import Context
from repro.report.claims import check_expectations, report_claims

RULES = {"A beats B": lambda v: v["A"] > v["B"], "C is small": lambda v: v["C"] < 0.1}


def test_rules_give_true_false_and_none_for_missing_or_nan_values():
    assert check_expectations(RULES, {"A": 2, "B": 1, "C": 0.5}) == {"A beats B": True, "C is small": False}
    assert check_expectations(RULES, {"A": 2, "B": math.nan}) == {"A beats B": None, "C is small": None}


def test_report_claims_writes_each_verdict_with_its_note_and_profile(tmp_path, capsys):
    ctx = Context("tap", "quick", 1, "code", {}, tmp_path)
    checks = check_expectations(RULES, {"A": 2, "B": 1, "C": 0.5}) | {"D": None}
    path = report_claims(ctx, "figure5", checks, {"profile": "quick"}, {"C is small": "needs the full data"})
    assert path == tmp_path / "tables" / "tap" / "figure5_claims.csv"
    table = pd.read_csv(path, keep_default_na=False)
    assert table["result"].tolist() == ["holds", "does not hold", "n/a"]
    assert table.loc[1, "note"] == "needs the full data" and set(table["profile"]) == {"quick"}
    assert path.with_suffix(".json").exists()
    out = capsys.readouterr().out
    assert "holds: A beats B" in out and "does not hold: C is small" in out
