"""Shared fixtures: a smoke-sized actdiff context and a run store in a temp dir."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from repro.papers import get_paper, load_all
from repro.runs.store import RunStore, atomic_write_json

load_all()  # the registries (models, datasets, penalties) as the pipeline fills them

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.gpu` tests are skipped where CUDA is not available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture
def smoke_ctx(tmp_path: Path):
    return get_paper("actdiff").context("smoke", None, "code", {}, tmp_path / "out", None)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


def new_record(runs_dir: Path, cfg):
    """The run store record of `cfg` under `runs_dir`, initialised (config written) and ready to train."""
    store = RunStore(runs_dir)
    rec = store.record(cfg)
    store.init(rec)
    return rec


def tiny_actdiff_config(out: Path, epochs: int = 3):
    """A smoke actdiff CNN Classify run, smaller still (16 images per split, 4 channels): resume tests' run."""
    from repro.papers.actdiff.plans import synthetic_run

    ctx = get_paper("actdiff").context("smoke", None, "code", {}, out, None)
    smoke = synthetic_run(ctx, "CNN", "Classify", 0).config
    return smoke.replace(epochs=epochs, batch_size=8, model_args={**smoke.model_args, "nc": 4},
                         data={**smoke.data, "n_train": 16, "n_valid": 16, "n_test": 16})


def plant_done(store: RunStore, cfg, **result):
    """Mark the run of `cfg` done with a made-up result: the contract's keys (`repro.runs.record.RESULT_KEYS`)
    filled with neutral values, then `result`'s. Returns its record."""
    rec = store.record(cfg)
    store.init(rec)
    base = {"key": cfg.key, "epochs": cfg.epochs, "selection": "final", "best_epoch": max(cfg.epochs - 1, 0),
            "best": {}, "final": {}, "seconds": 0.0, "device": "cpu (planted)"}
    atomic_write_json(rec.path("result.json"), base | result)
    rec.path("done").write_text("")
    return rec


def plan_states(output: str) -> list[str]:
    """The state column of every run row in a `--dry-run` plan table (wrapped continuation lines skipped)."""
    cells = [line.split("│")[1].strip() for line in output.splitlines() if line.startswith("│")]
    return [c for c in cells if c]


class Stop(Exception):
    """Raised from an event callback to interrupt a run mid-training (resume tests)."""


def stop_after_epoch(epoch: int = 1, exc: type[BaseException] = Stop):
    """An event callback raising `exc` once `epoch` (1-based) is recorded and checkpointed."""

    def callback(event: dict) -> None:
        if event.get("event") == "epoch" and event["epoch"] == epoch:
            raise exc

    return callback


def copy_knee_splits(dst: Path, per_split: int) -> Path:
    """A kneeKL224/{train,val,test}/0..4 layout of `per_split` shared val images per grade and split (the
    shared KNEE data holds the val split only)."""
    for g in range(5):
        files = sorted((SHARED_DATA / "kneeKL224" / "val" / str(g)).glob("*.png"))
        for k, split in enumerate(("train", "val", "test")):
            (dst / split / str(g)).mkdir(parents=True)
            for f in files[per_split * k:per_split * (k + 1)]:
                (dst / split / str(g) / f.name).symlink_to(f)
    return dst


@pytest.fixture(scope="session")
def tiny_tap_root(tmp_path_factory) -> Path:
    """A TAP data root in the official layouts: the shared MNIST, 3 chest X-rays per split and class, and a
    KNEE train/val/test of 2 images per grade (links to the shared files)."""
    if not (SHARED_DATA / "chest_xray").exists():
        pytest.skip("../shared/data not present")
    root = tmp_path_factory.mktemp("tap_data")
    (root / "MNIST").symlink_to(SHARED_DATA / "MNIST")
    for split in ("train", "test"):
        for cls in ("NORMAL", "PNEUMONIA"):
            (root / "chest_xray" / split / cls).mkdir(parents=True)
            for f in sorted((SHARED_DATA / "chest_xray" / split / cls).iterdir())[:3]:
                (root / "chest_xray" / split / cls / f.name).symlink_to(f)
    copy_knee_splits(root / "kneeKL224", 2)
    return root


@pytest.fixture
def full_disk(monkeypatch):
    """`full_disk(match, nth=1, after=0)`: from now on the disk is full for the `nth` file (and every later one)
    whose path contains `match`, once `after` bytes of it are written: os.write writes what fits, then raises
    ENOSPC, as the OS does."""

    def fill(match: str, nth: int = 1, after: int = 0) -> None:
        real, seen, written = os.write, [], {}

        def write(fd: int, data) -> int:
            path = os.readlink(f"/proc/self/fd/{fd}")
            if match not in path:
                return real(fd, data)
            if path not in seen:
                seen.append(path)
            room = after - written.get(path, 0) if seen.index(path) + 1 >= nth else len(data)
            if room <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            n = real(fd, bytes(memoryview(data)[:room]))
            written[path] = written.get(path, 0) + n
            return n

        monkeypatch.setattr(os, "write", write)

    return fill
