"""The CLI through Typer's runner: help, artefacts, smoke outputs, skipping, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from repro.cli import app
from repro.papers import PAPER_NAMES, get_paper
from repro.report.claims import ONE_SEED_FAILS, ONE_SEED_HOLDS
from tests.conftest import plan_states, plant_done

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_help_lists_groups_and_commands():
    out = invoke("--help").output
    for name in (*PAPER_NAMES, "list", "status", "data"):
        assert name in out


@pytest.mark.parametrize("paper", PAPER_NAMES)
def test_each_paper_lists_its_artefacts_and_all(paper):
    out = invoke(paper, "--help").output
    for art in [*get_paper(paper).artefacts, "all"]:
        assert art in out


@pytest.mark.parametrize("paper", PAPER_NAMES)
def test_no_artefact_is_listed_as_not_implemented(paper):
    assert all(a.plan and a.build for a in get_paper(paper).artefacts.values())
    assert "not implemented" not in invoke(paper, "--help").output


def test_dry_run_lists_runs_and_trains_nothing(tmp_path):
    res = invoke("actdiff", "table1", "--profile", "smoke", "--runs-dir", str(tmp_path / "runs"), "--dry-run")
    assert res.exit_code == 0
    # 22 rows, 21 distinct runs: synthetic UNet Classify is the Conv AE Classify config
    assert "21 runs" in res.output and "21 pending" in res.output and "estimated" in res.output
    assert not (tmp_path / "runs").exists()


def test_smoke_table1_figures_and_rerun(tmp_path):
    runs, out = str(tmp_path / "runs"), tmp_path / "x"
    res = invoke("actdiff", "table1", "--profile", "smoke", "--runs-dir", runs, "--out", str(out), "--device", "cpu")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "tables" / "actdiff" / "table1.csv")
    assert len(table) == 22
    for v in ("train", "valid", "best_epoch"):
        for s in ("mean", "std", "n", "published", "published_std", "diff", "within_tol"):
            assert f"{v}_{s}" in table.columns
    assert (table["valid_n"] == 1).all() and table["valid_mean"].between(0, 1).all()
    prov = json.loads((out / "tables" / "actdiff" / "table1.json").read_text())
    assert prov["profile"] == "smoke" and len(set(prov["run_keys"])) == 21 and prov["seeds"] == [0]
    assert prov["reading"] == "final"
    claims = pd.read_csv(out / "tables" / "actdiff" / "table1_claims.csv")
    assert claims["claim"].str.contains("ResNet Actdiff generalises").any() and claims["sentence"].notna().all()
    assert claims["result"].isin([ONE_SEED_HOLDS, ONE_SEED_FAILS]).all()  # one seed: said, not tested
    _assert_table1_reading(table, runs, "final")
    logs = sorted(p.stat().st_size for p in Path(runs).rglob("metrics.jsonl"))
    best = tmp_path / "best"  # A-17 option: the best-valid reading from the same runs, nothing trained
    res = invoke("actdiff", "table1", "--profile", "smoke", "--runs-dir", runs, "--out", str(best),
                 "--switch", "table1_reading=best", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "start" not in res.output and logs == sorted(p.stat().st_size for p in Path(runs).rglob("metrics.jsonl"))
    _assert_table1_reading(pd.read_csv(best / "tables" / "actdiff" / "table1.csv"), runs, "best")
    _plant_msd_runs(Path(runs))  # the MSD columns train in tests/papers/actdiff/test_msd.py
    res = invoke("actdiff", "table2", "--profile", "smoke", "--runs-dir", runs, "--out", str(out), "--device", "cpu")
    assert res.exit_code == 0, res.output
    t2 = pd.read_csv(out / "tables" / "actdiff" / "table2.csv").set_index(["model", "method"])
    claims2 = pd.read_csv(out / "tables" / "actdiff" / "table2_claims.csv").set_index("claim")["result"]
    resnet = t2.loc[("ResNet", "Actdiff"), "synthetic_test_mean"] - t2.loc[("ResNet", "Classify"), "synthetic_test_mean"]
    verdict = ONE_SEED_HOLDS if resnet > 0 else ONE_SEED_FAILS
    assert claims2["ResNet Actdiff generalises to the test set (above ResNet Classify)"] == verdict
    for fig in ("figure3", "figure7"):
        res = invoke("actdiff", fig, "--profile", "smoke", "--runs-dir", runs, "--out", str(out), "--device", "cpu")
        assert res.exit_code == 0, res.output
        png = out / "figures" / "actdiff" / f"{fig}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = invoke("actdiff", "table1", "--profile", "smoke", "--runs-dir", runs, "--out", str(out), "--dry-run")
    assert res.exit_code == 0 and set(plan_states(res.output)) == {"done"} and "21 done;" in res.output
    status = invoke("status", "--profile", "smoke", "--runs-dir", runs).output
    assert "table1" in status
    listing = invoke("list", "--profile", "smoke", "--runs-dir", runs).output
    assert "complete" in listing and "not implemented yet" not in listing
    # without --profile: every profile that has runs (here smoke only), never "0 done" for the paper profile
    for command in ("status", "list"):
        shown = " ".join(invoke(command, "--runs-dir", runs).output.split())
        assert "profiles with runs: smoke" in shown, shown
        done = re.search(r"│ actdiff │ table1 │ (?:table │ \d+ │ )?(\d+) │", shown)
        assert done and int(done.group(1)) > 0, shown


def _plant_msd_runs(runs: Path) -> None:
    """Prepare the smoke MSD slices and mark Table 2's MSD runs done (test accuracy 0.5)."""
    from repro.papers.actdiff import plans as actdiff
    from repro.runs.store import RunStore

    ctx = get_paper("actdiff").context("smoke", None, "code", {}, Path("unused"), None, runs)
    actdiff.prepare_msd_tasks(ctx)
    for run in actdiff.plan_msd(ctx):
        plant_done(RunStore(runs), run.config, best={"test": {"accuracy": 0.5, "rocauc": 0.5}})


def _assert_table1_reading(table: pd.DataFrame, runs: str, reading: str) -> None:
    """Each Table 1 row (one seed) holds its run's result.json values at `reading` ("final" or "best")."""
    from repro.papers.actdiff import plans as actdiff
    from repro.runs.store import RunStore

    paper = get_paper("actdiff")
    ctx = paper.context("smoke", None, "code", {"table1_reading": reading}, Path("unused"), None)
    store = RunStore(Path(runs))
    for run in actdiff.plan_grid(ctx):
        res = store.record(run.config).result()
        row = table[(table["model"] == run.cell["model"]) & (table["method"] == run.cell["method"])].iloc[0]
        assert row["train_mean"] == pytest.approx(res[reading]["train"]["accuracy"])
        assert row["valid_mean"] == pytest.approx(res[reading]["valid"]["accuracy"])
        assert row["best_epoch_mean"] == res["best_epoch"]


def test_data_check_exits_0_with_nothing_present(tmp_path):
    res = invoke("data", "check", "--data-root", str(tmp_path))
    assert res.exit_code == 0 and "missing" in res.output


def test_workers_pool_and_figure6_and_figure1(tmp_path):
    runs, out = str(tmp_path / "runs"), tmp_path / "x"
    res = invoke("actdiff", "figure6", "--profile", "smoke", "--runs-dir", runs, "--out", str(out),
                 "--device", "cpu", "--workers", "2")
    assert res.exit_code == 0, res.output
    data = __import__("numpy").load(out / "figures" / "actdiff" / "figure6.npz")
    assert list(data["UNet_percent"]) == [20, 40, 60, 80, 100] and list(data["ResNet_n"]) == [1] * 5
    res = invoke("actdiff", "figure1", "--profile", "smoke", "--runs-dir", runs, "--out", str(out))
    assert res.exit_code == 0 and (out / "figures" / "actdiff" / "figure1.png").exists()


def test_status_and_list_show_every_profile_that_has_runs(tmp_path):
    from repro.runs.store import RunStore

    runs = tmp_path / "runs"
    store = RunStore(runs)
    paper = get_paper("actdiff")
    for profile, n in (("smoke", 1), ("quick", 2)):
        ctx = paper.context(profile, None, "code", {}, tmp_path, None, runs)
        for planned in paper.artefacts["figure3"].plan(ctx)[:n]:
            plant_done(store, planned.config)
    for command in ("status", "list"):
        shown = " ".join(runner.invoke(app, [command, "--runs-dir", str(runs)], env={"COLUMNS": "200"}).output.split())
        assert "profiles with runs: quick, smoke" in shown and "│ paper │" not in shown, shown
        for profile, n in (("quick", 2), ("smoke", 1)):
            assert re.search(rf"│ {profile} │ actdiff │ figure3 │ (?:figure │ \d+ │ )?{n} │", shown), shown
        only = " ".join(runner.invoke(app, [command, "--runs-dir", str(runs), "--profile", "paper"]).output.split())
        assert "(paper profile;" in only and "│ quick │" not in only, only
