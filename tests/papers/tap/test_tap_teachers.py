"""TAP teacher-student pipeline: teacher and student planning, the teacher saliency step, and Figures 8 and 9
end to end on a tiny PNEU preparation from the shared data (smoke profile, random init, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from repro.cli import app
from repro.papers.tap.data_prepare_tagged import prepare_pneu
from repro.papers import get_paper
from repro.papers.tap import teachers as teach
DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "chest_xray").exists(), reason="../shared/data/chest_xray not present")
runner = CliRunner()


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """A runs dir holding a 12-images-per-split PNEU preparation (KNEE absent)."""
    runs = tmp_path_factory.mktemp("runs")
    prepare_pneu(DATA / "chest_xray", runs / "prepared" / "tap" / "pneu", limit=12)
    return runs


def _args(runs: Path, out: Path, artefact: str) -> list[str]:
    return ["tap", artefact, "--profile", "smoke", "--init", "random", "--device", "cpu", "--runs-dir", str(runs),
            "--out", str(out), "--data-root", str(runs / "no-raw-data")]


def _ctx(runs: Path, **switches: str):
    return get_paper("tap").context("smoke", None, "code", switches, runs / "out", None, runs, "random", "cpu")


@needs_data
def test_students_follow_the_teacher_split_and_the_annotation_sources(runs_dir):
    ctx = _ctx(runs_dir)
    teacher = teach.teacher_run(ctx, "pneu", 0.5)
    assert teacher.config.data["train_rows"] == {"role": "teacher", "frac": 0.5, "seed": 0}
    assert teacher.config.data["variant"] == "clean" and teacher.config.model == "resnet18"
    students = teach.students(ctx, "pneu", "resnet18", 1e-3, {0.5: teacher})
    by = {r.cell["annotation"]: r.config.data for r in students}
    assert set(by) == {"GT", "rnd", "50%"}
    assert "annotation" not in by["GT"] and by["rnd"]["annotation"] == {"source": "random", "tau": 0.05, "size": 32}
    assert by["50%"]["annotation"]["saliency"].startswith(f"tap/{teacher.config.key}/saliency-")
    assert by["50%"]["train_rows"]["student_set"] == "remainder"  # D-10 default: paper
    full = teach.students(_ctx(runs_dir, student_set="full"), "pneu", "resnet18", 1e-3, {0.5: teacher})
    assert [r.config.data.get("train_rows", {}).get("student_set") for r in full][-1] == "full"
    with pytest.raises(ValueError, match="has no images"):
        teach.teacher_run(ctx, "pneu", 0.01)


@needs_data
def test_figure8_smoke_trains_teachers_and_plots_overlap(runs_dir, tmp_path):
    res = runner.invoke(app, _args(runs_dir, tmp_path, "figure8"), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    png = tmp_path / "figures" / "tap" / "figure8.png"
    frame = pd.read_csv(png.with_suffix(".csv"))
    assert png.exists() and set(frame["annotation"]) == {"rnd", "50%", "25%"}
    assert frame["precision"].between(0, 1).all() and frame["recall"].between(0, 1).all()
    prov = json.loads(png.with_suffix(".json").read_text())
    assert prov["profile"] == "smoke" and len(prov["run_keys"]) == 2 and not prov["missing_runs"]
    claims = pd.read_csv(tmp_path / "tables" / "tap" / "figure8_claims.csv", keep_default_na=False)
    assert "PNEU: raising tau reduces precision" in set(claims["claim"]) and claims["sentence"].str.len().min() > 50
    teacher = teach.teacher_run(_ctx(runs_dir), "pneu", 0.5)
    saliency = np.load(runs_dir / teach.saliency_file(_ctx(runs_dir), teacher))
    assert saliency.dtype == np.float16 and saliency.shape == (6, 32, 32) and (saliency > 0).any()  # 12 - 6 rows


@needs_data
@pytest.mark.slow
def test_figure9_smoke_trains_students_and_writes_the_text_numbers(runs_dir, tmp_path):
    """Reuses the teachers of the Figure 8 test when run after it (same runs dir)."""
    res = runner.invoke(app, _args(runs_dir, tmp_path, "figure9"), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "figures" / "tap" / "figure9.csv")
    assert set(table["annotation"]) == {"GT", "rnd", "50%", "25%"} and (table["metric_n"] == 1).all()
    text = pd.read_csv(tmp_path / "tables" / "tap" / "text.csv")
    teacher_rows = text[text["quantity"].str.startswith("teacher_50pct_fscore_pneu")]
    assert list(teacher_rows["where"]) == ["clean test", "correlated test", "permuted test"]
    assert set(text[text["quantity"].str.startswith("random")]["published"].astype(str)) == {"1.9"}
    again = runner.invoke(app, [*_args(runs_dir, tmp_path, "figure9"), "--dry-run"])
    assert "pending" not in again.output
