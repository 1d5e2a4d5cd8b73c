"""The run-folder contract (`repro.runs.record`): a run store written before it is reused without retraining,
and an interrupted cfaug or MaskTune run is partial, as an actdiff or TAP run is.

tests/fixtures/store_27997b6 holds the records (config, result, done, metrics; weights dropped) that main at
27997b6 wrote for `repro cfaug table3 --profile smoke` and `repro masktune figure2 --profile smoke`;
tests/fixtures/store_f363a1a those that main at f363a1a (before the engine became one package, issue 27) wrote for
`repro actdiff table1`, `repro tap figure5`, `repro cfaug table3` and `repro masktune figure2` at the smoke
profile."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from repro.cli import app
from repro.engine import train_run
from repro.papers import get_paper
from repro.runs import record as contract
from repro.runs.launch import todo
from repro.runs.store import PARTIAL, RunStore
from tests.conftest import SHARED_DATA, new_record, plan_states, stop_after_epoch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STORES = {"27997b6": [("cfaug", "table3", 10), ("masktune", "figure2", 3)],
          "f363a1a": [("actdiff", "table1", 21), ("tap", "figure5", 5), ("cfaug", "table3", 10),
                      ("masktune", "figure2", 3)]}
pytestmark = pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data not present")


def _copy_store(commit: str, tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES / f"store_{commit}", runs)
    return runs


@pytest.fixture
def old_runs(tmp_path: Path) -> Path:
    return _copy_store("27997b6", tmp_path)


def _records(paper: str, artefact: str, runs: Path) -> list:
    p = get_paper(paper)
    ctx = p.context("smoke", None, "code", {}, runs.parent / "out", SHARED_DATA, runs)
    if p.artefacts[artefact].prepare:
        p.artefacts[artefact].prepare(ctx)
    store = RunStore(runs)
    return [store.record(r.config) for r in p.artefacts[artefact].plan(ctx)]


@pytest.mark.parametrize("commit,paper,artefact,n",
                         [(c, *a) for c, artefacts in STORES.items() for a in artefacts])
def test_a_store_written_by_an_earlier_main_is_reused_without_retraining(tmp_path, commit, paper, artefact, n):
    old_runs = _copy_store(commit, tmp_path)
    records = _records(paper, artefact, old_runs)
    assert len({r.key for r in records}) == n and not todo(records)
    for rec in records:
        assert not contract.missing_keys(rec.result()), rec.key
        assert rec.result()["epochs"] == len(rec.metrics())
    res = CliRunner().invoke(app, [paper, artefact, "--profile", "smoke", "--data-root", str(SHARED_DATA),
                                   "--runs-dir", str(old_runs), "--dry-run"])
    assert res.exit_code == 0 and plan_states(res.output) == ["done"] * n, res.output


def test_legacy_finetune_weights_are_found_under_their_old_name(old_runs):
    finetune = next(r for r in _records("masktune", "figure2", old_runs) if r.config.method == "masktune")
    (finetune.dir / "finetuned.pt").write_bytes(b"")
    assert contract.weights_file(finetune.dir, "final") == finetune.dir / "finetuned.pt"
    (finetune.dir / "final.pt").write_bytes(b"")
    assert contract.weights_file(finetune.dir, "final") == finetune.dir / "final.pt"


INTERRUPT = stop_after_epoch(1, KeyboardInterrupt)  # as Ctrl-C or a kill: no failure recorded, the checkpoint kept


def test_an_interrupted_masktune_run_is_partial_in_status(tmp_path):
    runs = tmp_path / "runs"
    erm = next(r for r in _records("masktune", "figure2", runs) if r.config.method == "erm")
    with pytest.raises(KeyboardInterrupt):
        train_run(erm, torch.device("cpu"), INTERRUPT, checkpoint_seconds=0, profile="smoke")
    assert erm.state() == PARTIAL
    status = CliRunner().invoke(app, ["status", "--profile", "smoke", "--runs-dir", str(runs)])
    lines = status.output.splitlines()
    header = [c.strip() for c in next(line for line in lines if "pending" in line).split("┃")]
    row = [c.strip() for c in next(line for line in lines if "masktune" in line and "figure2" in line).split("│")]
    counts = dict(zip(header, row))
    assert {k: counts[k] for k in ("done", "damaged", "running", "failed", "partial", "pending")} == {
        "done": "0", "damaged": "0", "running": "0", "failed": "0", "partial": "1", "pending": "2"}, status.output


def test_an_interrupted_cfaug_run_is_partial_and_resumes(tmp_path):
    run = _records("cfaug", "table3", tmp_path / "runs")[0]
    rec = new_record(tmp_path / "runs", run.config.replace(epochs=2))  # smoke trains one epoch: nothing to stop
    with pytest.raises(KeyboardInterrupt):
        train_run(rec, torch.device("cpu"), INTERRUPT, checkpoint_seconds=0, profile="smoke")
    assert rec.state() == PARTIAL and len(rec.metrics()) == 1
    train_run(rec, torch.device("cpu"), profile="smoke")
    assert rec.state() == "done" and [m["epoch"] for m in rec.metrics()] == [0, 1]
    assert "resuming at epoch 1" in rec.path("log.txt").read_text() and not list(rec.dir.glob("*.corrupt-*"))


@pytest.mark.parametrize("damage", [b"garbage, not a torch file", b"", "truncated", "other keys"])
def test_a_damaged_checkpoint_is_set_aside_and_the_run_trains_from_scratch(tmp_path, damage):
    run = _records("cfaug", "table3", tmp_path / "runs")[0]
    rec = new_record(tmp_path / "runs", run.config.replace(epochs=2))
    with pytest.raises(KeyboardInterrupt):
        train_run(rec, torch.device("cpu"), INTERRUPT, checkpoint_seconds=0, profile="smoke")
    ckpt = rec.path(contract.CHECKPOINT)
    if damage == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:1000])
    elif damage == "other keys":
        torch.save({"epoch": 0, "rng": {}, "best": {}, "model": {"w": torch.zeros(1)}, "optimizer": {}}, ckpt)
    else:
        ckpt.write_bytes(damage)
    kept = ckpt.read_bytes()
    events: list[dict] = []
    train_run(rec, torch.device("cpu"), events.append, profile="smoke")
    warnings = [e for e in events if e["event"] == "warning"]
    assert rec.state() == "done" and [m["epoch"] for m in rec.metrics()] == [0, 1]
    assert len(warnings) == 1 and str(rec.dir) in warnings[0]["message"], warnings
    asides = list(rec.dir.glob("checkpoint.pt.corrupt-*"))
    assert len(asides) == 1 and asides[0].read_bytes() == kept  # nothing the user had is deleted
