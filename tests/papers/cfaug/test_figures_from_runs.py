"""cfaug figures built from trained runs (smoke sizes): the scatter of Figures 4/7/10 and Figure 5's data ratios."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from repro.engine import train_run
from repro.papers import get_paper
from repro.papers.cfaug.plans import RATIOS, ratio_plan, scatter_plan, plan
from repro.runs.store import RunStore

CPU = torch.device("cpu")


def _ctx(tmp: Path):
    paper = get_paper("cfaug")
    ctx = paper.context("smoke", 1, "code", {}, tmp / "out", None, tmp / "runs")
    paper.prepare(ctx)
    return ctx


def _train(ctx, runs):
    store = RunStore(ctx.runs_dir)
    for r in runs:
        rec = store.record(r.config)
        if not rec.path("done").exists():
            store.init(rec)
            train_run(rec, CPU, profile="smoke")
    return store


def _titles(monkeypatch, module: str) -> list[str]:
    """Capture the suptitle of every figure `module` saves."""
    import repro.report.figures as figures

    titles: list[str] = []

    def save(fig, *args):
        titles.append(fig._suptitle.get_text())
        return figures.save_figure(fig, *args)

    monkeypatch.setattr(f"{module}.save_figure", save)
    return titles


def test_scatter_plan_adds_the_grids_once_and_the_figure_has_one_point_per_run(tmp_path, monkeypatch):
    from repro.papers.cfaug.report_scatter import family, scatter

    ctx = _ctx(tmp_path)
    runs = scatter_plan(ctx, "waterbirds")
    keys = [r.config.key for r in runs]
    assert len(keys) == len(set(keys))
    table_keys = {r.config.key for r in plan(ctx, "waterbirds")}
    assert table_keys < set(keys)  # every table run, plus the grids
    sal = sorted(r.config.method_args["sal"] for r in runs if r.cell["method"] == "Sal")
    assert sal == [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]
    fgsm = sorted({r.config.method_args["fgsm_eps"] for r in runs if r.cell["method"] == "F(FGSM)"})
    assert fgsm == [0.15, 0.25, 0.35, 0.5, 0.6, 0.75, 0.9]
    chosen = [r for r in runs if r.cell["method"] in ("Orig", "CF(Grey)", "LS")][:4]
    store = _train(ctx, chosen)
    titles = _titles(monkeypatch, "repro.papers.cfaug.report_scatter")
    (path,) = scatter(ctx, chosen, store)
    assert "synthetic data" in titles[0]
    arrays = np.load(path.with_suffix(".npz"))
    assert len(arrays["aupr"]) == 2 * len(chosen) and set(arrays["set"]) == {"original", "flip"}
    prov = json.loads(path.with_suffix(".json").read_text())
    assert set(prov["r_squared"]) == {"original", "flip"} and prov["paper_r_squared"]["flip"] == 0.08
    assert prov["init"] == "random"  # the smoke model has no pretrained weights, whatever --init says
    assert family("CF(CAGAN)+F(Random)+Sal") == "CF+F" and family("F(FGSM)") == "F"


def test_error_bars_stop_at_zero_and_reached_ratio_says_when_capped():
    from repro.papers.cfaug.report_ratio import error_bars, reached_ratio

    bars = error_bars(pd.Series([0.5, 50.0, 10.0]), pd.Series([2.0, 3.0, float("nan")]))
    assert bars.tolist() == [[0.5, 3.0, 0.0], [2.0, 3.0, 0.0]]
    capped = {"ratio_base": 16, "counts": {"train": 16}, "extra": 9, "extra_wanted": 48}
    assert reached_ratio(capped) == (pytest.approx(25 / 16), True)
    assert reached_ratio({**capped, "extra": 48}) == (4.0, False)
    assert reached_ratio({**capped, "extra_wanted": None}) == (pytest.approx(25 / 16), False)  # -1: all of IN-9L
    assert reached_ratio({"ratio_base": 16, "counts": {"train": 8}, "extra": 0, "extra_wanted": 0}) == (0.5, False)


def test_ratio_runs_change_the_training_set_and_ratio_1_is_table1s_run(tmp_path, monkeypatch):
    from repro.papers.cfaug.report_ratio import figure5

    ctx = _ctx(tmp_path)
    runs = ratio_plan(ctx)
    assert sorted({r.cell["ratio"] for r in runs}) == sorted(RATIOS)
    table1 = {r.config.key for r in plan(ctx, "in9")}
    ones = [r for r in runs if r.cell["ratio"] == 1]
    assert ones and all(r.config.key in table1 for r in ones)
    orig = [r for r in runs if r.cell["method"] == "Orig" and r.cell["ratio"] in (0.5, 1.0, 4.0)]
    store = _train(ctx, orig)
    details = {r.cell["ratio"]: store.record(r.config).result()["details"] for r in orig}
    assert details[0.5]["counts"]["train"] == details[1.0]["counts"]["train"] // 2
    assert details[4.0]["extra"] > 0 and details[1.0]["extra"] == 0
    assert details[4.0]["extra"] < details[4.0]["extra_wanted"]  # the fixture has 9 IN-9L images, not 3 x 16
    titles = _titles(monkeypatch, "repro.papers.cfaug.report_ratio")
    (path,) = figure5(ctx, orig, store)
    assert "synthetic data" in titles[0] and "ratio 4 capped" in titles[0]
    arrays = np.load(path.with_suffix(".npz"))
    assert arrays["capped"].tolist() == [False, False, True]
    assert arrays["reached_mean"][-1] == pytest.approx(1 + 9 / 16)
    prov = json.loads(path.with_suffix(".json").read_text())
    assert prov["capped_ratios"] == [4.0] and prov["init"] == "random"
