"""`scripts/device-check`: its dry run prints every step with its time budget within 9 minutes, runs nothing, and
a pass's done runs pack into a records tarball (no weights) that a later pass restores."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "device-check"
STEPS = ("install", "gpu-tests", "smoke", "bench", "tap-table1", "actdiff-table1", "actdiff-table1-build", "pack")


def _module():
    loader = importlib.machinery.SourceFileLoader("device_check", str(SCRIPT))
    spec = importlib.util.spec_from_loader("device_check", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["device_check"] = module  # its dataclasses look their module up
    loader.exec_module(module)
    return module


def test_dry_run_prints_the_plan_with_its_time_budget():
    out = subprocess.run([str(SCRIPT), "--dry"], capture_output=True, text=True, check=True).stdout
    budgets = {m[1]: int(m[2]) for m in re.finditer(r"^  (\S+)\s+(\d+) s", out, re.M)}
    assert tuple(budgets) == STEPS
    total = re.search(r"^total: (\d+) s of (\d+) s$", out, re.M)
    assert int(total[1]) == sum(budgets.values()) <= int(total[2]) == 540
    assert "pip install -q --no-deps --no-build-isolation -e" in out and "pytest -m gpu" in out
    assert all(f"repro.cli {p} all --profile smoke" in out for p in ("actdiff", "tap", "cfaug", "masktune"))
    assert "bench --profile paper" in out and "actdiff table1 --profile paper" in out


def test_budgets_over_the_total_are_refused():
    proc = subprocess.run([str(SCRIPT), "--dry", "--budget", "300"], capture_output=True, text=True)
    assert proc.returncode != 0 and "exceed the total" in proc.stderr


def test_done_runs_pack_without_weights_and_resume(tmp_path):
    dc = _module()
    runs = tmp_path / "runs"
    for key, done in (("a", True), ("b", False)):
        run = runs / "actdiff" / key
        run.mkdir(parents=True)
        for name in ("result.json", "metrics.jsonl", "final.pt", "checkpoint.pt", *(["done"] if done else [])):
            (run / name).write_text(name)
    summary: dict = {}
    dc.pack(runs, tmp_path / "out", summary)
    assert summary["done_runs"] == 1
    restored = tmp_path / "again"
    assert dc.resume(tmp_path / "out" / "records.tar.gz", restored) == 1
    assert sorted(p.name for p in (restored / "actdiff" / "a").iterdir()) == ["done", "metrics.jsonl", "result.json"]
    assert not (restored / "actdiff" / "b").exists()
