"""cfaug in `repro bench`: one row per kind of training step of Tables 1, 4, 6, whose runs add up to the table."""

from __future__ import annotations

import math

import torch

from repro.papers.cfaug.bench import TABLES, cfaug_rows, kind
from repro.papers.cfaug.plans import ROWS, SEEDS
def test_kinds_cover_every_table_config_once():
    rows = list(cfaug_rows("smoke", torch.device("cpu")))
    assert {grid for grid, *_ in rows} == set(TABLES.values())
    for dataset, grid in TABLES.items():
        labels = [label for g, label, *_ in rows if g == grid]
        assert sorted(labels) == sorted({kind(r) for r in ROWS[dataset][:-1]})
    assert kind(next(r for r in ROWS["in9"] if r.method == "CF(CAGAN)+F(Shuffle)+Sal")) == "CF+F+Sal"
    assert kind(next(r for r in ROWS["cct"] if r.method == "F(FGSM)")) == "F(FGSM)"
    assert kind(ROWS["waterbirds"][0]) == kind(next(r for r in ROWS["waterbirds"] if r.method == "LS"))


def test_a_measured_row_is_one_by_one_with_the_table_projection():
    rows = [run for grid, label, _, run in cfaug_rows("smoke", torch.device("cpu")) if grid == "cfaug table4"]
    measured = [run() for run in rows[:2]]
    for row in measured:
        assert row["not_packed"] and math.isnan(row["packed_model_steps_per_s"]) and row["one_by_one_images_per_s"] > 0
        assert row["pipeline_grid_hours"] == row["one_by_one_grid_hours"] > 0
        assert row["grid_runs"] % len(SEEDS) == 0 and row["shape"] == "3x32x32"
    assert sum(r["grid_runs"] for r in measured) <= (len(ROWS["waterbirds"]) - 1) * len(SEEDS)
