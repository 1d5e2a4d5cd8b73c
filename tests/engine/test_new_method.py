"""A new method is one registry entry: a penalty written here, and nothing else, trains through the engine on two
papers' smoke data (actdiff's synthetic crosses and TAP's decoy MNIST), with the configs their smoke plans make."""

from __future__ import annotations

import math

import pytest
import torch

from repro.engine import train_run
from repro.methods import PENALTIES, Penalty, StepContext, register_penalty
from repro.papers import get_paper
from repro.papers.actdiff.plans import synthetic_run
from repro.papers.tap.mnist import mnist_run, prepare
from repro.runs.store import RunStore
from tests.conftest import SHARED_DATA

NAME = "test_logit_l2"


@pytest.fixture
def logit_l2():
    """The method: the squared logits, per sample, registered under NAME for the test only."""
    calls = []

    @register_penalty(NAME)
    class LogitL2(Penalty):
        def __call__(self, ctx: StepContext) -> torch.Tensor:
            calls.append(len(ctx.y))
            return ctx.logits.pow(2).mean(1)

    yield calls
    PENALTIES.pop(NAME)


def _actdiff_config(tmp_path):
    ctx = get_paper("actdiff").context("smoke", None, "code", {}, tmp_path / "out", None, tmp_path / "runs")
    return synthetic_run(ctx, "CNN", "Classify", 0).config


def _tap_config(tmp_path):
    if not (SHARED_DATA / "MNIST").exists():
        pytest.skip("../shared/data/MNIST not present")
    ctx = get_paper("tap").context("smoke", None, "paper", {}, tmp_path / "out", SHARED_DATA, tmp_path / "runs")
    prepare(ctx)
    return mnist_run(ctx, "TAP", 0, 1e-3).config


@pytest.mark.parametrize("make_config", [_actdiff_config, _tap_config], ids=["actdiff-synthetic", "tap-decoy-mnist"])
def test_a_penalty_registered_in_a_few_lines_trains_on_a_papers_smoke_data(tmp_path, logit_l2, make_config):
    config = make_config(tmp_path)
    config = config.replace(epochs=1, method_args={**config.method_args, "objective": {NAME: {"weight": 0.5}}})
    store = RunStore(tmp_path / "runs")
    record = store.record(config)
    store.init(record)
    train_run(record, torch.device("cpu"))
    assert record.state() == "done"
    assert logit_l2 and all(n > 0 for n in logit_l2)  # the engine's step called the method on every batch
    (epoch,) = record.metrics()
    assert epoch[NAME] > 0 and math.isclose(epoch["loss"], epoch["ce"] + epoch[NAME], rel_tol=1e-5)
