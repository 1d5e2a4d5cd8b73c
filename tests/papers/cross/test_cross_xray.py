"""`repro cross pneu` / `knee` (TAP's x-ray benchmarks, ResNet-18): the home cells are TAP's Figure 6 runs, a lambda
is chosen as TAP chooses it, foreign cells keep the benchmark's class weights, and a page that has no runs says why.
Planned from the shared raw data in dry-run contexts (nothing prepared)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repro.cli import app
from repro.papers import Context, get_paper
from repro.papers.cross.benchmarks import (BENCHMARKS, BY_NAME, XRAY_LEFT_OUT, absent, cell_run, chosen_lambda,
                                           hosted, plan_benchmark, sweep)
from repro.papers.tap.xray import chosen_xray_lambdas, plan_figure6, plan_xray_sweep
from repro.runs.store import RunStore
from tests.conftest import SHARED_DATA, plant_done

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "chest_xray").exists(), reason="needs ../shared/data/chest_xray")
PNEU = BENCHMARKS["pneu"]


def _dry(paper: str, profile: str, runs: Path) -> Context:
    return get_paper(paper).context(profile, None, "code", {}, runs / "out", SHARED_DATA, runs, dry_run=True)


def _plan_keys(output: str) -> list[str]:
    """The key column of every run row in a `--dry-run` plan table."""
    cells = [line.split("│")[3].strip() for line in output.splitlines() if line.startswith("│")]
    return [c for c in cells if c]


def test_the_smoke_plan_of_pneu_has_taps_figure6_runs_as_its_home_cells(tmp_path):
    runs = tmp_path / "runs"
    res = CliRunner().invoke(app, ["cross", "pneu", "--profile", "smoke", "--dry-run", "--data-root", str(SHARED_DATA),
                                   "--runs-dir", str(runs), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    plan = plan_benchmark(_dry("cross", "smoke", runs), PNEU)
    assert _plan_keys(res.output) == [r.config.key for r in plan]
    figure6 = {r.config.key for r in plan_figure6(_dry("tap", "smoke", runs))}
    home = [r for r in plan if r.cell["home"]]
    assert [r.cell["method"] for r in home] == ["Classify", "RRR", "RBR", "TAP"]
    assert all(r.config.key in figure6 and r.config.model == "resnet18" for r in home)
    assert len(plan) == len(hosted(PNEU)) and not any(r.config.key in figure6 for r in plan if not r.cell["home"])


def test_lambda_is_taps_choice_and_foreign_cells_keep_the_class_weights(tmp_path):
    """Paper grids: the home sweep is TAP's ResNet-18 sweep, and the lowest weighted permuted-val CE wins."""
    runs = tmp_path / "runs"
    cross, tap = _dry("cross", "paper", runs), _dry("tap", "paper", runs)
    home_sweep = sweep(cross, PNEU, BY_NAME["TAP"])
    taps = [r for r in plan_xray_sweep(tap, "pneu", ("resnet18",)) if r.cell["method"] == "TAP"]
    assert len(taps) == 10 and [r.config.key for r in home_sweep] == [r.config.key for r in taps]
    store = RunStore(runs)
    for i, run in enumerate(home_sweep):
        plant_done(store, run.config, final={"valid": {"ce": abs(i - 6) + 1.0}})
    assert chosen_lambda(cross, PNEU, BY_NAME["TAP"]) == home_sweep[6].cell["lambda"]
    assert chosen_xray_lambdas(tap, "pneu", "resnet18")["TAP"] == home_sweep[6].cell["lambda"]
    for name in ("Actdiff", "Sal"):  # a penalty and cfaug's objective: the plain run's class weights and eval batch
        args = cell_run(cross, PNEU, BY_NAME[name], 0, 10.0).config.method_args
        assert args["ce_weight"] == [0.7421, 0.2579] and args["metric_args"] == {"ce": {"batch": 16}}


def test_a_page_without_runs_says_why(tmp_path):
    """The quick profile leaves both out; the shared KNEE (its val split only) cannot train; nothing prepared and no
    data root: TAP's message."""
    runs = tmp_path / "runs"
    quick = _dry("cross", "quick", runs)
    assert absent(quick, PNEU) == XRAY_LEFT_OUT["quick"] and plan_benchmark(quick, PNEU) == []
    assert absent(replace(quick, profile="smoke"), PNEU) is None
    assert "without the train, test split(s)" in absent(replace(quick, profile="smoke"), BENCHMARKS["knee"])
    bare = get_paper("cross").context("smoke", None, "code", {}, tmp_path / "out", None, runs)
    assert absent(bare, PNEU).startswith("PNEU is not prepared")
