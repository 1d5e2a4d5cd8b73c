"""A damaged run folder never blocks the work: `repro status` and `--dry-run` say what is wrong, and the artefact
command retrains (or restarts) that run alone, keeping the damaged file beside it and every other run as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repro.cli import app
from repro.runs import record as contract
from tests.conftest import plan_states

runner = CliRunner()
ARTEFACT = ["actdiff", "figure3", "--profile", "smoke", "--device", "cpu"]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A runs dir holding the five finished smoke runs of actdiff Figure 3."""
    runs = tmp_path_factory.mktemp("template") / "runs"
    res = runner.invoke(app, [*ARTEFACT, "--runs-dir", str(runs), "--out", str(runs.parent / "out")])
    assert res.exit_code == 0, res.output
    return runs


def _unfinish(folder: Path, checkpoint: bytes, info: str) -> None:
    for name in (contract.DONE, contract.RESULT):
        (folder / name).unlink()
    (folder / contract.CHECKPOINT).write_bytes(checkpoint)
    (folder / contract.CHECKPOINT_INFO).write_text(info)


DAMAGE = {  # name: (damage to one finished run, the state `status` then gives, the reason or warning shown)
    "result is a list": (lambda d: (d / contract.RESULT).write_text("[]"), "damaged", "holds a JSON list"),
    "result is empty": (lambda d: (d / contract.RESULT).write_text("{}"), "damaged", "result.json lacks key, best_epoch"),
    "result is a string": (lambda d: (d / contract.RESULT).write_text('"ok"'), "damaged", "holds a JSON str"),
    "result is not JSON": (lambda d: (d / contract.RESULT).write_text('{"best": '), "damaged", "is not valid JSON"),
    "result lacks best": (lambda d: (d / contract.RESULT).write_text(json.dumps(
        {k: v for k, v in json.loads((d / contract.RESULT).read_text()).items() if k != "best"})),
        "damaged", "result.json lacks best"),
    "done without result": (lambda d: (d / contract.RESULT).unlink(), "damaged", "result.json is missing"),
    "garbage checkpoint": (lambda d: _unfinish(d, b"garbage", '{"epoch": 0}'), "partial", "damaged checkpoint"),
    "garbage checkpoint note": (lambda d: _unfinish(d, b"", "not json"), "partial", "damaged checkpoint"),
}


@pytest.mark.parametrize("name", DAMAGE)
def test_a_damaged_run_is_reported_and_retrained_alone(name, template, tmp_path):
    damage, state, reason = DAMAGE[name]
    runs = tmp_path / "runs"
    shutil.copytree(template, runs)
    folders = sorted(p.parent for p in runs.glob("actdiff/*/config.json"))
    victim, others = folders[0], {p: p.read_text() for p in runs.glob("actdiff/*/result.json")
                                  if p.parent != folders[0]}
    damage(victim)
    before = {p.name: p.read_bytes() for p in victim.iterdir() if p.is_file() and p.name != contract.LOG}
    status = runner.invoke(app, ["status", "--profile", "smoke", "--runs-dir", str(runs)])
    assert status.exit_code == 0 and "Traceback" not in status.output, status.output
    if state == "damaged":
        assert f"({victim.name}): {contract.RESULT}" in status.output and reason in status.output, status.output
    dry = runner.invoke(app, [*ARTEFACT, "--runs-dir", str(runs), "--dry-run"])
    assert dry.exit_code == 0 and sorted(plan_states(dry.output)) == sorted(["done"] * 4 + [state]), dry.output

    res = runner.invoke(app, [*ARTEFACT, "--runs-dir", str(runs), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    warnings = [line for line in res.output.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1 and reason in warnings[0] and victim.name[:8] in res.output, res.output
    assert json.loads((victim / contract.RESULT).read_text())["key"] == victim.name  # trained again
    assert {p: p.read_text() for p in others} == others  # the other runs untouched
    kept = {p.name.split(".corrupt-")[0]: p.read_bytes() for p in victim.glob("*.corrupt-*")}
    damaged_file = contract.RESULT if state == "damaged" else contract.CHECKPOINT
    assert kept.get(damaged_file) == before.get(damaged_file)  # the damaged file kept beside (when there was one)
