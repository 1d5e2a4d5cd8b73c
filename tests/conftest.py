"""Shared fixtures: a smoke-sized actdiff context and a run store in a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from repro.papers import get_paper
from repro.runs.store import RunStore

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture
def smoke_ctx(tmp_path: Path):
    return get_paper("actdiff").context("smoke", None, "code", {}, tmp_path / "out", None)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")
