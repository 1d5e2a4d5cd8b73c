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


def _cut_metrics(folder: Path, line: int, keep: int) -> None:
    """Cut metrics.jsonl after `keep` bytes of its `line`-th line (1-based), dropping the lines after it."""
    path = folder / contract.METRICS
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:line - 1]) + lines[line - 1][:keep])


R, M, C = contract.RESULT, contract.METRICS, contract.CHECKPOINT
DAMAGE = {  # name: (damage to one finished run, the state `status` then gives, the file set aside, the reason or
    # warning shown)
    "result is a list": (lambda d: (d / R).write_text("[]"), "damaged", R, "holds a JSON list"),
    "result is empty": (lambda d: (d / R).write_text("{}"), "damaged", R, "result.json lacks key, best_epoch"),
    "result is a string": (lambda d: (d / R).write_text('"ok"'), "damaged", R, "holds a JSON str"),
    "result is not JSON": (lambda d: (d / R).write_text('{"best": '), "damaged", R, "is not valid JSON"),
    "result lacks best": (lambda d: (d / R).write_text(json.dumps(
        {k: v for k, v in json.loads((d / R).read_text()).items() if k != "best"})),
        "damaged", R, "result.json lacks best"),
    "done without result": (lambda d: (d / R).unlink(), "damaged", R, "result.json is missing"),
    "metrics last line torn": (lambda d: _cut_metrics(d, 2, 40), "damaged", M,
                               "metrics.jsonl line 2 is not a whole record"),
    "metrics middle line garbled": (lambda d: (d / M).write_bytes(b"[1, 2]\n" + (d / M).read_bytes()), "damaged",
                                    M, "metrics.jsonl line 1 is not a whole record"),
    "garbage checkpoint": (lambda d: _unfinish(d, b"garbage", '{"epoch": 0}'), "partial", C, "damaged checkpoint"),
    "garbage checkpoint note": (lambda d: _unfinish(d, b"", "not json"), "partial", C, "damaged checkpoint"),
}


@pytest.mark.parametrize("name", DAMAGE)
def test_a_damaged_run_is_reported_and_retrained_alone(name, template, tmp_path):
    damage, state, damaged_file, reason = DAMAGE[name]
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
        assert f"({victim.name}): {damaged_file}" in status.output and reason in status.output, status.output
    dry = runner.invoke(app, [*ARTEFACT, "--runs-dir", str(runs), "--dry-run"])
    assert dry.exit_code == 0 and sorted(plan_states(dry.output)) == sorted(["done"] * 4 + [state]), dry.output

    res = runner.invoke(app, [*ARTEFACT, "--runs-dir", str(runs), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    warnings = [line for line in res.output.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1 and reason in warnings[0] and victim.name[:8] in res.output, res.output
    assert json.loads((victim / contract.RESULT).read_text())["key"] == victim.name  # trained again
    assert {p: p.read_text() for p in others} == others  # the other runs untouched
    kept = {p.name.split(".corrupt-")[0]: p.read_bytes() for p in victim.glob("*.corrupt-*")}
    assert kept.get(damaged_file) == before.get(damaged_file)  # the damaged file kept beside (when there was one)
