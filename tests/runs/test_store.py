"""Run store: atomic records, claims, skip, resume after SIGKILL with identical metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from repro.papers import get_paper
from repro.papers.actdiff import plans as actdiff
from repro.runs.launch import LaunchOptions, execute, train_claimed
from repro.runs.store import DONE, PARTIAL, PENDING, RUNNING, Claim, RunStore, StoreError, read_json


def _run(ctx, model="CNN", method="Classify", epochs=3):
    planned = actdiff.synthetic_run(ctx, model, method, 0)
    return planned.config.replace(epochs=epochs)


def test_run_key_is_stable_and_changes_with_config(smoke_ctx):
    a, b = _run(smoke_ctx), _run(smoke_ctx)
    assert a.key == b.key and len(a.key) == 16
    assert a.replace(seed=1).key != a.key
    assert a.replace(data={**a.data, "maxmasks": 0.5}).key != a.key


def test_claim_is_exclusive_until_released(store, smoke_ctx):
    rec = store.record(_run(smoke_ctx))
    first, second = Claim(rec), Claim(rec)
    assert first.acquire()
    assert not second.acquire()
    assert rec.state() == RUNNING
    first.release()
    assert second.acquire()
    second.release()
    assert rec.state() == PENDING


def test_train_skip_and_records(store, smoke_ctx):
    rec = store.record(_run(smoke_ctx, epochs=2))
    store.init(rec)
    assert train_claimed(str(store.root), [rec.config.to_dict()], "cpu", LaunchOptions()) == [DONE]
    metrics = rec.metrics()
    assert [m["epoch"] for m in metrics] == [0, 1] and all(m["key"] == rec.key for m in metrics)
    result = rec.result()
    assert result["best_epoch"] in (0, 1)
    assert result["best"]["valid"]["accuracy"] == max(m["valid_accuracy"] for m in metrics)
    for name in ("config.json", "provenance.json", "log.txt", "best.pt", "final.pt", "done"):
        assert rec.path(name).exists(), name
    assert not rec.path("checkpoint.pt").exists()
    predictions = torch.load(rec.path("predictions.pt"))
    assert set(predictions) == set(result["final"]) - {"train"}
    for split, p in predictions.items():  # the stored logits reproduce the final metrics
        assert (p["logits"].argmax(1) == p["labels"]).float().mean().item() == result["final"][split]["accuracy"]
    mtime = rec.path("result.json").stat().st_mtime_ns
    execute(store, [rec], LaunchOptions(device="cpu"), lambda e: None)
    assert rec.path("result.json").stat().st_mtime_ns == mtime  # done runs are not retrained


def test_corrupt_result_is_a_clear_error(store, smoke_ctx):
    rec = store.record(_run(smoke_ctx))
    rec.dir.mkdir(parents=True)
    rec.path("result.json").write_text('{"best": ')
    with pytest.raises(StoreError, match="Delete its run folder"):
        read_json(rec.path("result.json"))


def test_unwritable_runs_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="--runs-dir"):
        RunStore(blocker / "runs").check_writable()


KILL_SCRIPT = """
import os, sys
from pathlib import Path
from repro.config import RunConfig
from repro.engine import train_run
from repro.runs.store import RunStore
import torch
torch.set_num_threads(2)  # as in the reference run: CPU float sums depend on the thread count
store = RunStore(Path(sys.argv[1]))
rec = store.record(RunConfig.from_dict(__import__("json").loads(Path(sys.argv[2]).read_text())))
when, n = sys.argv[3].split(":")  # epoch:N = after the N-th epoch; rename:N = inside the N-th checkpoint write
def events(e):
    if when == "epoch" and e["event"] == "epoch" and e["epoch"] == int(n):
        os.kill(os.getpid(), 9)
import repro.runs.store as store_module
replace, calls = os.replace, []
def killing_replace(src, dst):  # the temp file is written and synced: die before the rename
    if str(dst).endswith("checkpoint.pt"):
        calls.append(dst)
        if when == "rename" and len(calls) == int(n):
            os.kill(os.getpid(), 9)
    replace(src, dst)
store_module.os.replace = killing_replace
train_run(rec, torch.device("cpu"), events, checkpoint_seconds=0)
"""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """A 4-epoch actdiff ResNet Actdiff run trained without interruption: (its config, its store)."""
    root = tmp_path_factory.mktemp("uninterrupted")
    cfg = _run(get_paper("actdiff").context("smoke", None, "code", {}, root / "out", None), "ResNet", "Actdiff", 4)
    store = RunStore(root / "runs")
    train_claimed(str(store.root), [cfg.to_dict()], "cpu", LaunchOptions())
    return cfg, store


@pytest.mark.parametrize("kill,epochs_logged", [("epoch:2", 2), ("rename:2", 2)])
def test_resume_after_sigkill_gives_identical_metrics(tmp_path, uninterrupted, kill, epochs_logged):
    """Killed after an epoch, or inside a checkpoint write between the synced temp file and its rename (the
    previous checkpoint stays whole): the resumed run's records equal the uninterrupted run's."""
    cfg, ref_store = uninterrupted
    kill_store = RunStore(tmp_path / "kill")
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfg.to_dict()))
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(kill_store.root), str(cfg_file), kill])
    assert proc.returncode == -signal.SIGKILL
    killed = kill_store.record(cfg)
    assert killed.state() == PARTIAL and len(killed.metrics()) == epochs_logged
    if kill.startswith("rename"):  # the checkpoint of epoch 0 is whole, the temp file of epoch 1 left behind
        assert torch.load(killed.path("checkpoint.pt"), weights_only=False)["epoch"] == 0
        assert list(killed.dir.glob(".checkpoint.pt.*.tmp"))
    train_claimed(str(kill_store.root), [cfg.to_dict()], "cpu", LaunchOptions())
    strip = lambda ms: [{k: v for k, v in m.items() if k != "seconds"} for m in ms]  # noqa: E731
    assert strip(killed.metrics()) == strip(ref_store.record(cfg).metrics())
    a, b = killed.result(), ref_store.record(cfg).result()
    assert (a["best_epoch"], a["best"], a["final"]) == (b["best_epoch"], b["best"], b["final"])
    assert not list(killed.dir.glob(".*.tmp"))  # the stale temp file is cleared when the run is claimed again


CLAIM_SCRIPT = """
import sys, json
from pathlib import Path
from repro.runs.launch import LaunchOptions, execute
from repro.runs.store import RunStore
from repro.config import RunConfig
store = RunStore(Path(sys.argv[1]))
recs = [store.record(RunConfig.from_dict(c)) for c in json.loads(Path(sys.argv[2]).read_text())]
execute(store, recs, LaunchOptions(device="cpu"), lambda e: print(json.dumps(e), flush=True))
"""


def test_two_processes_never_train_the_same_run(tmp_path, smoke_ctx):
    cfgs = [_run(smoke_ctx, m, "Classify", epochs=2) for m in ("CNN", "Conv AE", "UNet", "ResNet")]
    store = RunStore(tmp_path / "runs")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([c.to_dict() for c in cfgs]))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM_SCRIPT, str(store.root), str(plan)],
                              stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    starts = [json.loads(line)["key"] for out in outs for line in out.splitlines()
              if json.loads(line)["event"] == "start"]
    keys = {c.key for c in cfgs}  # UNet Classify is the Conv AE Classify run: 3 distinct runs
    assert len(keys) == 3 and sorted(starts) == sorted(keys)  # each run started exactly once in total
    assert all(store.record(c).state() == DONE for c in cfgs)
    assert all(len(store.record(c).metrics()) == 2 for c in cfgs)
