"""A full disk (ENOSPC) while writing a record: an OSError naming the file, whatever writes it (torch.save would
raise a RuntimeError of its own), the file as it was before, no temp file left, and a run that resumes."""

from __future__ import annotations

import errno

import pytest
import torch

from repro.engine import train_run
from repro.errors import FAILED, explain
from repro.runs import record as contract
from repro.runs.store import DONE, RunStore, atomic_write, atomic_write_text
from tests.conftest import tiny_actdiff_config

CPU = torch.device("cpu")
CHECKPOINT = {"model": {"w": torch.zeros(1000)}, "epoch": 3}  # as torch.save writes a checkpoint


def _write_torch(path, obj) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


@pytest.mark.parametrize("write,data", [(_write_torch, CHECKPOINT), (atomic_write_text, "x" * 5000)])
@pytest.mark.parametrize("after", [0, 100, 4096])
def test_a_full_disk_is_an_oserror_naming_the_file_which_is_kept(tmp_path, full_disk, write, data, after):
    path = tmp_path / "record"
    path.write_bytes(b"before")
    full_disk(str(tmp_path), after=after)
    with pytest.raises(OSError) as e:
        write(path, data)
    assert (e.value.errno, e.value.filename) == (errno.ENOSPC, str(path))
    assert path.read_bytes() == b"before" and [p.name for p in tmp_path.iterdir()] == ["record"]
    code, message = explain(e.value)
    assert code == FAILED and message.startswith(f"No space left on device: {path}. The disk is full: free some")


def test_a_full_disk_appending_a_record_names_metrics_jsonl(tmp_path, full_disk):
    rec = RunStore(tmp_path).record(tiny_actdiff_config(tmp_path / "out"))
    rec.dir.mkdir(parents=True)
    full_disk(contract.METRICS, after=10)
    with pytest.raises(OSError) as e:
        rec.append_metrics({"epoch": 0, "loss": 1.0}, sync=False)
    assert (e.value.errno, e.value.filename) == (errno.ENOSPC, str(rec.path(contract.METRICS)))
    assert rec.metrics() == []  # the torn line is not a record


def test_a_run_stopped_by_a_full_disk_resumes_to_the_same_records(tmp_path, monkeypatch, full_disk):
    cfg = tiny_actdiff_config(tmp_path / "out")
    ref = RunStore(tmp_path / "ref").record(cfg)
    train_run(ref, CPU, checkpoint_seconds=0)
    rec = RunStore(tmp_path / "full").record(cfg)
    full_disk(contract.CHECKPOINT, nth=2, after=100)  # the second checkpoint's write fails
    with pytest.raises(OSError) as e:
        train_run(rec, CPU, checkpoint_seconds=0)
    assert (e.value.errno, e.value.filename) == (errno.ENOSPC, str(rec.path(contract.CHECKPOINT)))
    assert torch.load(rec.path(contract.CHECKPOINT), weights_only=False)["epoch"] == 0  # the previous one, whole
    assert not list(rec.dir.glob(".*.tmp")) and "No space left" in rec.path(contract.FAILED).read_text()
    monkeypatch.undo()  # space freed
    train_run(rec, CPU, checkpoint_seconds=0)
    strip = lambda ms: [{k: v for k, v in m.items() if k != "seconds"} for m in ms]  # noqa: E731
    assert strip(rec.metrics()) == strip(ref.metrics()) and rec.state() == DONE
    a, b = rec.result(), ref.result()
    assert (a["best_epoch"], a["best"], a["final"]) == (b["best_epoch"], b["best"], b["final"])
