"""The user's data files are never written: byte-identical (and not rewritten) after `repro data prepare` and a
smoke run of each paper reading them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repro.cli import app
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data not present")
COMMANDS = [["data", "prepare", p] for p in ("actdiff", "tap", "masktune", "cfaug")] + [
    [*artefact, "--profile", "smoke", "--device", "cpu", "--init", "random", "--out", "{out}"]  # no download
    for artefact in (["actdiff", "figure3"], ["tap", "lambdas"], ["masktune", "figure2"], ["cfaug", "figure1"])]


def _fingerprint(root: Path) -> dict[str, tuple[int, int, str]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns,
                                       hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_prepare_and_smoke_runs_leave_the_data_root_as_it_was(tmp_path):
    before = _fingerprint(SHARED_DATA)
    codes = []
    for cmd in COMMANDS:
        args = [a.format(out=tmp_path / "out") for a in cmd]
        res = CliRunner().invoke(app, [*args, "--data-root", str(SHARED_DATA), "--runs-dir", str(tmp_path / "runs")])
        assert "Traceback" not in res.output, res.output
        codes.append(res.exit_code)
    assert codes == [2] + [0] * 7  # actdiff's X-ray data are not in the shared data: a clear error, nothing else
    assert _fingerprint(SHARED_DATA) == before
