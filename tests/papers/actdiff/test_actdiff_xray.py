"""actdiff X-ray (Fig. 5a, 5b, 9) on synthetic NIH + PadChest data in the official layout (smoke sizes)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from repro.cli import app
from repro.papers import get_paper
from repro.papers.actdiff.plans import XRAY_ROWS, plan_xray
from repro.report.claims import ONE_SEED_FAILS, ONE_SEED_HOLDS
def test_figure5b_9_and_5a_through_the_cli(tmp_path):
    args = ["--profile", "smoke", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]
    for artefact in ("figure5b", "figure9", "figure5a"):
        res = CliRunner().invoke(app, ["actdiff", artefact, *args])
        assert res.exit_code == 0, res.output
    table = pd.read_csv(next((tmp_path / "out").rglob("figure5b.csv")), keep_default_na=False)
    assert list(table["row"]) == list(XRAY_ROWS) and (table["test_n"] == 1).all()
    assert float(table.loc[1, "published"]) == 0.44 and table.loc[1, "published_test"] == "not tested: no published std"
    claims = pd.read_csv(next((tmp_path / "out").rglob("figure5b_claims.csv")))
    spc = claims[claims["claim"] == "Classify SPC 90% scores below chance"]["result"].item()
    assert spc == (ONE_SEED_HOLDS if table.loc[1, "test_mean"] < 0.5 else ONE_SEED_FAILS)
    prov = json.loads(next((tmp_path / "out").rglob("figure5b.json")).read_text())
    assert "train, valid and test" in prov["masked_row"]  # A-8 default: the paper's reading
    means = np.load(next((tmp_path / "out").rglob("figure9.npz")))
    assert set(means) == {"mean_NIH", "mean_PadChest"} and means["mean_NIH"].shape == (128, 128)
    maps = np.load(next((tmp_path / "out").rglob("figure5a.npz")))
    assert maps["images"].shape == (2, 128, 128) and maps["disc"].sum() == 8245


def test_rows_use_their_split_and_the_masked_row_follows_a8(tmp_path):
    paper = get_paper("actdiff")
    ctx = paper.context("smoke", 1, "code", {}, tmp_path / "out", None, tmp_path / "runs")
    paper.prepare(ctx)
    runs = {r.cell["row"]: r.config for r in plan_xray(ctx)}
    assert runs["Classify balanced (no SPC; ratio 0.5)"].data["prepared"].endswith("xray-r0.5")
    assert runs["Classify SPC 90%"].data["prepared"].endswith("xray-r0.9")
    assert runs["Masked inputs SPC 90%"].data["masked_splits"] == ["train", "valid", "test"]
    assert set(runs["Actdiff SPC 90%"].method_args["objective"]) == {"actdiff"}
    assert runs["Classify SPC 90%"].lr == 1e-3 and runs["Classify SPC 90%"].model_args["img_size"] == 128
    code = paper.context("smoke", 1, "code", {"A-8": "test"}, tmp_path / "out", None, tmp_path / "runs")
    assert {r.cell["row"]: r.config for r in plan_xray(code)}["Masked inputs SPC 90%"].data["masked_splits"] == [
        "test"]


def test_paper_profile_without_the_xray_data_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(app, ["actdiff", "figure5b", "--runs-dir", str(tmp_path / "runs"),
                                   "--data-root", str(tmp_path)])
    assert res.exit_code == 2 and "NIH/" in res.output and "--profile smoke" in res.output
