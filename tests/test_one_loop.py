"""Folding cfaug's and MaskTune's trainers into the one loop (`repro.engine.fit`) changed no number: the same
configs, trained as before, give the records that the papers' own loops wrote at commit 27997b6
(tests/fixtures/loops_before_fold.json: a cfaug CF+F+Sal run and MaskTune's ERM, MaskTune and RandMask runs on
biased MNIST, three epochs for the ERM runs), and their run keys are unchanged."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from repro.engine import train_run
from repro.papers import get_paper
from repro.papers.masktune.train import erm_config
from repro.runs.store import RunStore
from tests.conftest import SHARED_DATA

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "loops_before_fold.json").read_text())
pytestmark = pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data not present")


def _plan(paper: str, artefact: str, runs: Path) -> list:
    p = get_paper(paper)
    ctx = p.context("smoke", None, "paper", {}, runs / "out", SHARED_DATA, runs)
    p.artefacts[artefact].prepare(ctx)
    return p.artefacts[artefact].plan(ctx)


def _configs(runs: Path) -> list:
    """The golden runs' configs, picked as they were at 27997b6."""
    out = [r.config.replace(epochs=3) for r in _plan("cfaug", "table3", runs)
           if r.label == "in9 CF(CAGAN)+F(Shuffle)+Sal lambda=1e-4? s5"]
    for r in _plan("masktune", "figure2", runs):
        out.append(r.config.replace(epochs=3) if r.config.method == "erm" else r.config)
    return out


def _flat(record: dict) -> dict:
    """A pre-contract metrics record with cfaug's nested `sets` flattened to `<split>_<metric>`."""
    out = dict(record)
    for split, values in out.pop("sets", {}).items():
        out |= {f"{split}_{k}": v for k, v in values.items()}
    return out


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() <= b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_close, a, b))
    if isinstance(a, float):
        return isinstance(b, (int, float)) and (math.isnan(a) and math.isnan(b) or math.isclose(a, b, rel_tol=1e-4,
                                                                                                 abs_tol=1e-5))
    return a == b


def test_the_one_loop_reproduces_the_records_of_the_papers_own_loops(tmp_path):
    store = RunStore(tmp_path / "runs")
    configs = _configs(tmp_path / "runs")
    assert {c.key for c in configs} == set(GOLDEN)  # run keys stable across the move
    assert erm_config(configs[-1]).key not in GOLDEN  # the finetunes' own ERM (smoke epochs) is trained on the way
    for cfg in configs:
        rec = store.record(cfg)
        store.init(rec)
        train_run(rec, torch.device("cpu"))
    for key, want in GOLDEN.items():
        rec = store.record(next(c for c in configs if c.key == key))
        got, metrics = rec.result(), rec.metrics()
        assert len(metrics) == len(want["metrics"]), want["label"]
        for old, new in zip(want["metrics"], metrics):
            old = {k: v for k, v in _flat(old).items() if k != "seconds"}
            assert _close(old, new), (want["label"], old, new)
        for part, value in want["result"].items():
            assert _close(value, got[part]), (want["label"], part)
