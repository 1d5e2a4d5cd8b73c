"""Planning of the PNEU / KNEE sweeps and Figures 6-7 (spec §6, §8 E2/E3/T1) and `repro tap figure6` (smoke)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from repro.cli import app
from repro.config import resolve_switches
from repro.papers.tap.data_prepare_tagged import prepare_pneu
from repro.engine import metric_options
from repro.methods import build_objective
from repro.papers import Context, tap
from repro.papers.tap import xray
from repro.runs.store import RunStore
from tests.conftest import plant_done

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
pytestmark = pytest.mark.skipif(not (DATA / "chest_xray").exists(), reason="../shared/data/chest_xray not present")


def ctx_for(runs: Path, profile: str = "paper", data_root: Path | None = None, fidelity: str = "code") -> Context:
    return Context("tap", profile, None, fidelity, resolve_switches(tap.SWITCHES, fidelity, {}), runs / "out",
                   data_root, runs, init="random")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    prepare_pneu(DATA / "chest_xray", root / "prepared" / "tap" / "pneu", jpeg_quality=None, limit=4)
    return root


def finish(store: RunStore, run, val_ce: float) -> None:
    """Mark a planned run done with a made-up final permuted-val CE."""
    plant_done(store, run.config, final={"valid": {"ce": val_ce, "accuracy": 0.5}})


def test_plan_sweeps_first_then_every_method_with_its_chosen_lambda(runs):
    ctx = ctx_for(runs)
    first = xray.plan_figure6(ctx)
    sweep = xray.plan_xray_sweep(ctx, "pneu")
    assert len(sweep) == 3 * 30 and [r.config.key for r in first[:90]] == [r.config.key for r in sweep]
    assert {r.cell["method"] for r in first[90:]} == {"Base", "No XS"} and len(first) == 90 + 3 * 2 * 5
    assert all(r.config.seed == 0 for r in sweep)
    store = RunStore(runs)
    best = {"vgg16": 1e-3, "resnet18": 1e-6, "densenet121": 1.0}
    for r in sweep:
        lam = r.cell["lambda"] * (1e-6 if r.cell["method"] == "RBR" else 1)  # RBR's grid is 1e9 higher
        finish(store, r, abs(math.log10(lam / best[r.cell["arch"]])))  # lowest CE at the arch's `best`
    chosen = xray.chosen_xray_lambdas(ctx, "pneu", "vgg16")
    assert chosen == {"RRR": 1e-3, "RBR": 1e3, "TAP": 1e-3}
    main = xray.plan_figure6(ctx)[90:]
    for arch, lam in best.items():
        cells = [r.cell for r in main if r.cell["arch"] == arch]
        assert sorted((c["method"], c["seed"]) for c in cells) == sorted(
            (m, s) for m in tap.METHODS for s in range(5))
        assert {c["lambda"] for c in cells if c["method"] == "TAP"} == {lam}
        assert {c["lambda"] for c in cells if c["method"] == "RBR"} == {lam * 1e6}
        assert {c["lambda"] for c in cells if c["method"] in ("Base", "No XS")} == {None}


def test_hyperparameters_batch_and_class_weights(runs):
    ctx = ctx_for(runs)
    rbr = {a: xray.xray_run(ctx, "pneu", a, "RBR", 0, 10.0).config for a in xray.ARCHS}
    assert {a: c.batch_size for a, c in rbr.items()} == {"vgg16": 16, "resnet18": 16, "densenet121": 8}
    tap_cfg = xray.xray_run(ctx, "pneu", "densenet121", "TAP", 0, 1e-3).config
    assert (tap_cfg.batch_size, tap_cfg.lr, tap_cfg.epochs, tap_cfg.selection) == (16, 1e-5, 50, "final")
    assert tap_cfg.optimizer == {"name": "sgd", "momentum": 0.9}
    assert tap_cfg.model_args == {"num_classes": 2, "init": "random", "targets": "transitions"}  # D-7 code
    cfg = rbr["resnet18"]
    objective = build_objective(cfg.method_args["objective"], cfg.method_args["ce_weight"])
    weights = [0.7421, 0.2579]
    assert objective.ce_weight.tolist() == pytest.approx(weights)
    assert objective.penalties["rbr"][1].class_weight.tolist() == pytest.approx(weights)
    assert metric_options(cfg)["ce"] == {"batch": 16, "weight": weights}  # the val CE is weighted too
    assert xray.xray_run(ctx, "pneu", "vgg16", "Base", 0, None).config.data["variant"] == "clean"


def test_paper_fidelity_switches_reach_the_run_configs(runs):
    code, paper = ctx_for(runs), ctx_for(runs, fidelity="paper")
    for ctx, sgd, targets, layers, output in ((code, {"momentum": 0.9}, "transitions", 5, "log_softmax"),
                                              (paper, {"weight_decay": 0.9}, "dense_blocks", 5, "logits")):
        assert xray.xray_run(ctx, "pneu", "resnet18", "No XS", 0, None).config.optimizer == {"name": "sgd", **sgd}
        assert xray.xray_run(ctx, "pneu", "densenet121", "TAP", 0, 1e-3).config.model_args["targets"] == targets
        assert xray.xray_run(ctx, "pneu", "vgg16", "TAP", 0, 1e-3).config.model_args["layers"] == layers
        rrr = xray.xray_run(ctx, "pneu", "vgg16", "RRR", 0, 1e-3).config.method_args["objective"]["rrr"]
        assert rrr["output"] == output
    plain = xray.xray_run(paper, "pneu", "resnet18", "RBR", 0, 10.0).config  # D-13 paper: plain CE everywhere
    assert "ce_weight" not in plain.method_args and plain.method_args["objective"]["rbr"]["class_weight"] is None
    four = Context("tap", "paper", None, "code", resolve_switches(tap.SWITCHES, "code", {"D-6": "4"}),
                   runs / "out", None, runs, init="random")
    assert xray.xray_run(four, "pneu", "vgg16", "TAP", 0, 1e-3).config.model_args["layers"] == 4


def test_knee_unprepared_or_without_train_is_a_clear_error(runs, tmp_path):
    ctx = ctx_for(runs)
    with pytest.raises(FileNotFoundError, match="repro data prepare tap --data-root"):
        xray.plan_figure7(ctx)
    folder = tmp_path / "prepared" / "tap" / "knee"
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"absent_splits": ["train", "test"], "fingerprint": "x"}))
    with pytest.raises(FileNotFoundError, match="without the train, test split"):
        xray.plan_figure7(ctx_for(tmp_path))
    assert not xray.trainable(ctx_for(tmp_path), "knee")


def test_prepare_xray_skips_absent_and_reports_bad_layouts(tmp_path, capsys):
    (tmp_path / "raw" / "chest_xray" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="PNEU: missing"):
        xray.prepare_xray(ctx_for(tmp_path / "runs", data_root=tmp_path / "raw"))
    shutil.rmtree(tmp_path / "raw" / "chest_xray")
    xray.prepare_xray(ctx_for(tmp_path / "runs", data_root=tmp_path / "raw"))
    assert "PNEU skipped" in capsys.readouterr().out and not (tmp_path / "runs" / "prepared").exists()


def test_figure6_smoke_cli_writes_png_and_csv(tmp_path):
    raw = tmp_path / "raw" / "chest_xray"
    for split, n in (("train", 10), ("test", 2)):
        for c in ("NORMAL", "PNEUMONIA"):
            (raw / split / c).mkdir(parents=True)
            for f in sorted((DATA / "chest_xray" / split / c).glob("*.jpeg"))[:n]:
                shutil.copy(f, raw / split / c / f.name)
    res = CliRunner().invoke(app, ["tap", "figure6", "--profile", "smoke", "--init", "random", "--device", "cpu",
                                   "--data-root", str(tmp_path / "raw"), "--out", str(tmp_path / "x"),
                                   "--runs-dir", str(tmp_path / "runs")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    png = tmp_path / "x" / "figures" / "tap" / "figure6.png"
    assert png.exists() and png.with_suffix(".csv").exists()
    prov = json.loads(png.with_suffix(".json").read_text())
    assert [(v["arch"], v["method"]) for v in prov["values"]] == [("resnet18", m) for m in tap.METHODS]
    assert all(v["f1_n"] == 1 for v in prov["values"]) and "not paper-faithful" in prov["notes"][0]
    claims = pd.read_csv(tmp_path / "x" / "tables" / "tap" / "figure6_claims.csv",
                         keep_default_na=False).set_index("claim")["result"]
    assert claims["vgg16: RBR relies on spurious signals (Delta-F1 negative)"] == "n/a"  # vgg16 not in smoke
    assert claims["resnet18: TAP Delta-F1 near 0"].startswith("one seed")
