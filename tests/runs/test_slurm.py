"""The submitit launcher with submitit's local executor: a job array trains the runs a local launcher would,
to the same records, and a task killed mid-run is resumed by the next submission."""

from __future__ import annotations

import os
import signal
import time

import pytest

from repro.papers.actdiff import plans as actdiff
from repro.runs.launch import LaunchOptions, execute
from repro.runs.slurm import SlurmOptions, job_states, run, submit
from repro.runs.store import DONE, RunStore

pytest.importorskip("submitit")


@pytest.fixture(autouse=True)
def _local_executor(monkeypatch):
    monkeypatch.setenv("REPRO_SUBMITIT", "local")


def _records(root, ctx, epochs: int):
    store = RunStore(root)
    configs = [actdiff.synthetic_run(ctx, "CNN", "Classify", s).config.replace(epochs=epochs) for s in range(3)]
    records = [store.record(c) for c in configs]
    for r in records:
        store.init(r)
    return store, records


def _metrics(records):
    return [[{k: v for k, v in m.items() if k != "seconds"} for m in r.metrics()] for r in records]


def test_job_array_trains_what_the_local_launcher_does(tmp_path, smoke_ctx):
    local_store, local = _records(tmp_path / "local", smoke_ctx, 2)
    execute(local_store, local, LaunchOptions(device="cpu"), lambda e: None)
    store, records = _records(tmp_path / "cluster", smoke_ctx, 2)
    run(store, records, LaunchOptions(device="cpu"), SlurmOptions(array_parallelism=2))
    assert [r.state() for r in records] == [DONE] * 3
    assert _metrics(records) == _metrics(local)
    jobs = job_states(store.root)
    assert len(jobs) == 2 and all(j["state"] == "finished" for j in jobs)


def test_killed_task_is_resumed_by_the_next_submission(tmp_path, smoke_ctx):
    ref_store, ref = _records(tmp_path / "ref", smoke_ctx, 6)
    execute(ref_store, ref, LaunchOptions(device="cpu"), lambda e: None)
    store, records = _records(tmp_path / "cluster", smoke_ctx, 6)
    opts = LaunchOptions(device="cpu", checkpoint_seconds=0)
    (job,) = submit(store, records, opts, SlurmOptions(array_parallelism=1))
    deadline = time.monotonic() + 120
    while not (records[0].path("checkpoint.json").exists() or records[0].path("done").exists()):
        assert time.monotonic() < deadline, "the task never checkpointed"
        time.sleep(0.05)
    os.kill(job._process.pid, signal.SIGKILL)  # the task dies mid-run, as on a node failure
    job._process.wait()
    assert records[2].state() != DONE
    run(store, records, opts, SlurmOptions(array_parallelism=1))
    assert [r.state() for r in records] == [DONE] * 3
    assert _metrics(records) == _metrics(ref)


def test_bad_slurm_option_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from repro.cli import app

    result = CliRunner().invoke(app, ["actdiff", "table1", "--profile", "smoke", "--launcher", "slurm",
                                      "--slurm-opt", "account", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--slurm-opt 'account' is not NAME=VALUE" in result.output
