"""metrics.jsonl cut anywhere (a kill or a full disk mid-write): a torn last line is detected, never fatal, and
the resumed run ends with exactly the records of an uninterrupted run; a bad line in the middle is damage."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from repro.engine import train_run
from repro.runs import record as contract
from repro.runs.store import DAMAGED, DONE, PARTIAL, RunStore, read_lines
from tests.conftest import tiny_actdiff_config

CPU = torch.device("cpu")


def _strip(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def _outcome(rec) -> tuple:
    """What a run ends with: its records but wall-clock seconds, its selection and its metrics."""
    result = rec.result()
    return _strip(rec.metrics()), result["best_epoch"], result["best"], result["final"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A 3-epoch tiny actdiff run: uninterrupted (its outcome), and its folder after 1 and 2 of the 3 epochs of
    an interrupted one (the checkpoint of epoch 0 with one record, of epoch 1 with two)."""
    root = tmp_path_factory.mktemp("torn")
    cfg = tiny_actdiff_config(root / "out")
    ref = RunStore(root / "ref").record(cfg)
    train_run(ref, CPU, checkpoint_seconds=0)
    rec, snapshots = RunStore(root / "cut").record(cfg), {}

    def snapshot(event: dict) -> None:
        if event["event"] == "epoch":
            snapshots[event["epoch"]] = shutil.copytree(rec.dir, root / f"after{event['epoch']}")
            if event["epoch"] == 2:
                raise KeyboardInterrupt  # as a kill: no failure recorded

    with pytest.raises(KeyboardInterrupt):
        train_run(rec, CPU, snapshot, checkpoint_seconds=0)
    return {"cfg": cfg, "outcome": _outcome(ref), **snapshots}


def _cut_folder(trained: dict, tmp_path: Path, checkpoint_after: int, length: int) -> Path:
    """A run folder holding the checkpoint written after `checkpoint_after` epochs (1 or 2) and the two records
    written after 2, cut to `length` bytes."""
    folder = shutil.copytree(trained[checkpoint_after], tmp_path / "runs" / "actdiff" / trained["cfg"].key)
    metrics = (trained[2] / contract.METRICS).read_bytes()
    (folder / contract.METRICS).write_bytes(metrics[:length])
    return folder


def _line_ends(trained: dict) -> list[int]:
    """The offsets after each newline of the interrupted run's two records."""
    data = (trained[2] / contract.METRICS).read_bytes()
    return [i + 1 for i, b in enumerate(data) if b == ord("\n")]


def test_every_cut_is_torn_whole_records_kept(trained, tmp_path):
    """Cut at every byte: the records before the cut line are read, the cut line is torn: no fault in an
    unfinished run, damage in a finished one."""
    rec = RunStore(tmp_path).record(trained["cfg"])
    rec.dir.mkdir(parents=True)
    data = (trained[2] / contract.METRICS).read_bytes()
    whole = [json.loads(line) for line in data.splitlines()]
    ends = [0, *_line_ends(trained)]
    for n in range(len(data) + 1):
        rec.path(contract.METRICS).write_bytes(data[:n])
        kept = sum(e <= n for e in ends[1:])
        lines = read_lines(rec.path(contract.METRICS))
        assert lines.records == rec.metrics() == whole[:kept], n
        assert (lines.bad, lines.torn) == ((None, False) if n in ends else (kept + 1, True)), n
        assert rec.metrics_fault(finished=False) is None
        assert (rec.metrics_fault(finished=True) is None) == (n in ends), n


@pytest.mark.parametrize("checkpoint_after", [2, 1])
def test_a_resumed_run_with_a_torn_line_ends_as_an_uninterrupted_one(trained, tmp_path, checkpoint_after):
    """Representative cuts (every byte is `test_every_cut_is_torn_whole_records_kept`'s; resuming does not read
    the cut file but rewrites it from the checkpoint): the last line cut before its newline or in half, or lost,
    and the line before cut in half. Whether the checkpoint covers the torn record (after 2 epochs) or not (after
    1: a kill between the record and its checkpoint), the resumed run's records and result equal the
    uninterrupted run's."""
    first, second = _line_ends(trained)
    cuts = [second - 1, (first + second) // 2, first, first // 2]
    for length in cuts if checkpoint_after == 2 else cuts[:2]:
        folder = _cut_folder(trained, tmp_path / str(length), checkpoint_after, length)
        rec = RunStore(folder.parents[1]).record(trained["cfg"])
        assert rec.state() == PARTIAL
        events: list[dict] = []
        train_run(rec, CPU, events.append, checkpoint_seconds=0)
        assert rec.state() == DONE and _outcome(rec) == trained["outcome"], length
        assert not [e for e in events if e["event"] == "warning"] and not list(folder.glob("*.corrupt-*"))


def test_a_damaged_middle_line_is_set_aside_and_the_records_rewritten(trained, tmp_path):
    folder = _cut_folder(trained, tmp_path, 2, len((trained[2] / contract.METRICS).read_bytes()))
    damaged = b"{garbage\n" + (folder / contract.METRICS).read_bytes()
    (folder / contract.METRICS).write_bytes(damaged)
    rec = RunStore(folder.parents[1]).record(trained["cfg"])
    assert rec.metrics_fault(finished=False) == "metrics.jsonl line 1 is not a whole record"
    events: list[dict] = []
    train_run(rec, CPU, events.append, checkpoint_seconds=0)
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert len(warnings) == 1 and "damaged metrics.jsonl" in warnings[0], warnings
    assert _outcome(rec) == trained["outcome"]
    assert [p.read_bytes() for p in folder.glob("metrics.jsonl.corrupt-*")] == [damaged]  # kept for the user


def test_a_finished_run_with_a_torn_line_is_damaged(trained, tmp_path):
    folder = _cut_folder(trained, tmp_path, 2, 0)
    rec = RunStore(folder.parents[1]).record(trained["cfg"])
    train_run(rec, CPU, checkpoint_seconds=0)
    data = rec.path(contract.METRICS).read_bytes()
    rec.path(contract.METRICS).write_bytes(data[:-1])  # the newline of the last record lost
    assert rec.state() == DAMAGED and rec.damage() == "metrics.jsonl line 3 is not a whole record"
    assert len(rec.metrics()) == 2


def test_a_record_is_appended_as_one_whole_line_in_one_write(trained, tmp_path, monkeypatch):
    rec = RunStore(tmp_path).record(trained["cfg"])
    rec.dir.mkdir(parents=True)
    writes: list[bytes] = []
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(bytes(data)) or real(fd, data))
    for epoch in range(2):
        rec.append_metrics({"epoch": epoch, "loss": 1.0}, sync=epoch == 1)
    assert writes == [b'{"epoch": 0, "loss": 1.0}\n', b'{"epoch": 1, "loss": 1.0}\n']
    assert rec.metrics() == [{"epoch": 0, "loss": 1.0}, {"epoch": 1, "loss": 1.0}]
