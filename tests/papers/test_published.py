"""The published numbers in the package equal the paper's text (papers/actdiff.txt)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from repro.report.tables import read_published

PAPER_TEXT = Path(__file__).resolve().parents[3] / "shared" / "papers" / "actdiff.txt"
ROW = re.compile(r"^(CNN|ResNet|Conv AE|UNet) (.+?)\t(.*)$")


def _paper_rows(first_header: str) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Rows of the tab-separated table whose header starts with `first_header`: (mean, std) cells."""
    if not PAPER_TEXT.exists():
        pytest.skip("papers/actdiff.txt not beside the checkout")
    lines = PAPER_TEXT.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_header))
    rows = {}
    for line in lines[start + 1:]:
        m = ROW.match(line)
        if not m:
            break
        cells = [re.sub(r"</?b>", "", c).split(" ± ") for c in m.group(3).split("\t")]
        rows[(m.group(1), m.group(2))] = [tuple(c) for c in cells]
    return rows


def test_table1_equals_the_paper():
    rows = _paper_rows("Experiment Name\tTrain AUC")
    pub = read_published("actdiff", "table1")
    assert len(rows) == len(pub) == 22
    for _, r in pub.iterrows():
        cells = rows[(r["model"], r["method"])]
        assert cells == [(r["train_mean"], r["train_std"]), (r["valid_mean"], r["valid_std"]),
                         (r["best_epoch_mean"], r["best_epoch_std"])]


def test_table2_equals_the_paper():
    rows = _paper_rows("Experiment Name\tSynthetic Test AUC")
    pub = read_published("actdiff", "table2")
    assert len(rows) == len(pub) == 22
    for _, r in pub.iterrows():
        expected = [(r[c], r[f"{c}_std"]) for c in ("synthetic", "liver", "cardiac", "pancreas")]
        assert rows[(r["model"], r["method"])] == expected


def test_tap_table1_equals_the_paper():
    text = PAPER_TEXT.with_name("tap.txt")
    if not text.exists():
        pytest.skip("papers/tap.txt not beside the checkout")
    lines = text.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("No XS\t"))
    printed = {}
    for line in lines[start:start + 4]:
        name, *cells = line.split("\t")
        cells = [c for c in cells if c]
        printed[name] = cells + ["OOM"] * (6 - len(cells))  # "OOM" spans both DenseNet cells
    pub = read_published("tap", "table1")
    assert list(pub["loss"]) == ["No XS", "RRR", "RBR", "TAP"]
    for _, row in pub.iterrows():
        assert list(row.iloc[1:]) == printed[row["loss"]]
