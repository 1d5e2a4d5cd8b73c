"""On CUDA (`pytest -m gpu`; skipped without it, `tests/conftest.py`): one training step (a one-epoch smoke run) of
every method of every paper, packed vs one-by-one training, a killed and resumed run, and the bench's timing.
The data root is $REPRO_DATA (the device check's staged copy) or ../shared/data."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from repro.engine import train_run
from repro.papers import get_paper
from repro.papers.actdiff.plans import METHODS as ACTDIFF_METHODS
from repro.papers.cfaug.plans import ROWS as CFAUG_ROWS, TABLE_DATASET
from repro.papers.tap.mnist import METHODS as TAP_METHODS
from repro.runs.store import RunStore
from tests.conftest import SHARED_DATA
from tests.test_packed import (PENALTY_SPECS, assert_killed_pack_resumes, assert_pack_equals_one_by_one,
                               assert_packed_step_equals_members)

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")
DATA = Path(os.environ.get("REPRO_DATA", SHARED_DATA))


def _cfaug_methods() -> dict[str, str]:
    """Every row method of cfaug's three accuracy tables -> the first dataset that has it."""
    out: dict[str, str] = {}
    for dataset in TABLE_DATASET.values():
        for row in CFAUG_ROWS[dataset]:
            out.setdefault(row.method, dataset)
    return out


CFAUG_METHODS = _cfaug_methods()
STEPS = ([("actdiff", "table1", m) for m in ACTDIFF_METHODS] + [("tap", "figure5", m) for m in TAP_METHODS]
         + [("cfaug", "table1", m) for m in CFAUG_METHODS] + [("masktune", "figure2", m)
                                                              for m in ("erm", "masktune", "randmask")])


def _smoke_runs(paper: str, artefact: str, runs: Path) -> list:
    p = get_paper(paper)
    ctx = p.context("smoke", None, "code", {}, runs / "out", DATA, runs, init="random", device="cuda")
    art = p.artefacts[artefact]
    if art.prepare:
        art.prepare(ctx)
    return art.plan(ctx)


def _pick(paper: str, artefact: str, method: str, runs: Path):
    """The config of the artefact's first smoke run of `method`, one epoch (a MaskTune finetune: as planned, one
    round after its ERM run)."""
    if paper == "cfaug":
        artefact = next(a for a, d in TABLE_DATASET.items() if d == CFAUG_METHODS[method])
    found = [r.config for r in _smoke_runs(paper, artefact, runs)
             if (r.config.method if paper == "masktune" else r.cell["method"]) == method]
    if not found:
        pytest.skip(f"no smoke run of {paper} {method} (its data is not in {DATA})")
    return found[0] if paper == "masktune" and method != "erm" else found[0].replace(epochs=1)


@pytest.mark.parametrize(("paper", "artefact", "method"), STEPS, ids=[f"{p}-{m}" for p, _, m in STEPS])
def test_one_training_step_of_every_method_on_cuda(tmp_path, paper, artefact, method):
    store = RunStore(tmp_path / "runs")
    rec = store.record(_pick(paper, artefact, method, tmp_path / "runs"))
    store.init(rec)
    result = train_run(rec, CUDA)
    assert rec.state() == "done" and result["device"].startswith(CUDA.type), rec.path("log.txt").read_text()
    losses = [v for m in rec.metrics() for k, v in m.items() if k == "loss" or k == "ce"]
    assert losses and all(math.isfinite(v) for v in losses)
    if paper == "cfaug":  # C-10: fp16 AMP on CUDA exactly for the runs without Sal
        assert result["amp"] == ("Sal" not in method)


@pytest.mark.parametrize("spec", PENALTY_SPECS, ids=[next(iter(s)) for s in PENALTY_SPECS])
def test_packed_step_and_double_backward_on_cuda(spec):
    """float64 (no TF32): a pack's parts and gradients equal each member's to rtol 1e-8, atol 1e-10."""
    assert_packed_step_equals_members(spec, CUDA, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("group", ["seeds", "mixed"])
def test_pack_equals_one_by_one_on_cuda(tmp_path, smoke_ctx, monkeypatch, group):
    """float64, three epochs: every member's records and weights equal its one-by-one run's to 1e-7."""
    assert_pack_equals_one_by_one(tmp_path, smoke_ctx, monkeypatch, group, CUDA, 1e-7)


def test_killed_cuda_pack_resumes_to_the_same_records(tmp_path, smoke_ctx):
    assert_killed_pack_resumes(tmp_path, smoke_ctx, "cuda")


def test_bench_timing_waits_for_the_gpu():
    """A step that only queues ~20 ms of GPU work is timed at its GPU time, not its launch time."""
    from repro.bench import time_steps

    cycles = int(0.02 * torch.cuda.get_device_properties(CUDA).clock_rate * 1e3)  # clock_rate is in kHz
    seconds, peak, _ = time_steps(lambda: torch.cuda._sleep(cycles), warmup=1, timed=3, device=CUDA)
    assert seconds >= 3 * 0.02 * 0.8 and peak >= 0
