"""`repro bench`: the benchmarked shapes come from the papers' settings, and the CSV has both modes."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from repro.bench import cases
from repro.cli import app


def test_cases_are_the_launchers_packs_of_each_grid():
    by_grid: dict[str, list] = {}
    for c in cases({"actdiff": 10, "tap": 5, "masktune": 3}):
        by_grid.setdefault(c.grid, []).append(c)
    assert sum(c.members for c in by_grid["actdiff table1"]) == 22 * 10  # 22 rows x 10 seeds
    assert {c.steps_per_run for c in by_grid["actdiff table1"]} == {16 * 500}  # 500 images / 32, 500 epochs
    cnn = next(c for c in by_grid["actdiff table1"] if c.label.startswith("CNN Classify"))
    assert cnn.members == 30 and {json.dumps(o) for o in cnn.objectives} == {  # Classify (masked too), Gradmask
        "{}", json.dumps({"gradmask": {"weight": 10.0, "norm": "l1"}})}
    assert sum(c.members for c in by_grid["tap figure5"]) == 5 * 5
    assert [c.packed_in_pipeline for c in by_grid["tap figure5"]] == [True, False]  # RBR: code-order influence
    assert {c.steps_per_run for c in by_grid["tap figure5"]} == {211 * 50}  # 54,000 / 256, 50 epochs
    assert [c.packed_in_pipeline for c in by_grid["masktune figure2"]] == [False]


def test_bench_smoke_writes_one_by_one_and_packed_columns(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--profile", "smoke", "--device", "cpu", "--only", "masktune",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "benchmarks" / "cpu.csv")
    assert len(table) == 1
    for mode in ("one_by_one", "packed"):
        assert table[f"{mode}_model_steps_per_s"].iloc[0] > 0
        assert table[f"{mode}_images_per_s"].iloc[0] == pytest.approx(table[f"{mode}_model_steps_per_s"].iloc[0] * 128,
                                                                      rel=1e-4)
    row = table.iloc[0]
    assert row["speedup"] == pytest.approx(row["packed_model_steps_per_s"] / row["one_by_one_model_steps_per_s"],
                                           rel=1e-3)
    assert row["pipeline_grid_hours"] == row["one_by_one_grid_hours"]  # MaskTune's runs are not packed
    prov = json.loads((tmp_path / "benchmarks" / "cpu.json").read_text())
    assert prov["profile"] == "smoke" and prov["grid_hours"][0]["grid"] == "masktune figure2"
