"""Four `repro actdiff table1 --profile smoke` processes on one runs dir train no run twice and write the table
an uninterrupted single process writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same thread count in every process: CPU sums depend on it


def _table1(runs: Path, out: Path, processes: int) -> pd.DataFrame:
    cmd = [sys.executable, "-m", "repro.cli", "actdiff", "table1", "--profile", "smoke", "--device", "cpu",
           "--runs-dir", str(runs), "--out", str(out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
             for _ in range(processes)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    return pd.read_csv(out / "tables" / "actdiff" / "table1.csv")


def test_four_concurrent_commands_train_each_run_once_and_match_one_process(tmp_path):
    alone = _table1(tmp_path / "alone", tmp_path / "alone_out", 1)
    together = _table1(tmp_path / "runs", tmp_path / "out", 4)
    starts = {log.parent.name: log.read_text().count("starting epoch 0")
              for log in (tmp_path / "runs").glob("actdiff/*/log.txt")}
    assert len(starts) == 21 and set(starts.values()) == {1}, starts  # 21 distinct runs, each trained once
    pd.testing.assert_frame_equal(together, alone)
