"""cfaug's methods on a resident-tensor benchmark: its own objective with LOOK as the foreground, trained by the
benchmark's job (one step through `repro.engine.train_run`, its parts logged)."""

from __future__ import annotations

import json

import pytest
import torch

from repro.engine import train_run
from repro.models import build_model
from repro.papers import get_paper, load_all
from repro.papers.cfaug.losses import CfaugMethod, CfaugObjective
from repro.papers.cross.benchmarks import BENCHMARKS, BY_NAME, cell_run
from repro.papers.cross.job import ResidentCfaug
from repro.runs.store import RunStore
from tests.conftest import SHARED_DATA


def test_look_is_the_foreground_where_it_is_exactly_one():
    """A soft LOOK edge (0.5) is background for cfaug, as it is outside for actdiff's penalties."""
    load_all()
    model = build_model("tap_cnn")
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    look = torch.zeros(4, 1, 28, 28)
    look[:, :, 8:20, 8:20] = 1.0
    look[:, :, 7, 8:20] = 0.5
    settings = {"cf": "tile", "cf_rectangle": False, "sal": 10.0}
    loss, parts = ResidentCfaug(settings)(model, x, y, look, [torch.Generator().manual_seed(0)])
    batch = {"x": x, "y": y, "mask": (look == 1).float(), "has_bbox": torch.ones(4, dtype=torch.long)}
    want, want_parts = CfaugObjective(CfaugMethod(**settings))(model, batch, torch.Generator().manual_seed(0))
    assert torch.equal(loss, want) and set(parts) == {"ce", "cf", "sal"}
    soft = {**batch, "mask": (look > 0).float()}
    assert not torch.equal(loss, CfaugObjective(CfaugMethod(**settings))(model, soft,
                                                                      torch.Generator().manual_seed(0))[0])


@pytest.mark.skipif(not (SHARED_DATA / "MNIST").exists(), reason="needs ../shared/data/MNIST")
def test_a_cf_cell_trains_through_the_benchmarks_job_and_logs_its_terms(tmp_path):
    from repro.papers.tap.mnist import prepare

    ctx = get_paper("cross").context("smoke", None, "code", {}, tmp_path / "out", SHARED_DATA, tmp_path / "runs")
    prepare(ctx)
    run = cell_run(ctx, BENCHMARKS["decoy_mnist"], BY_NAME["CF(Tile)"], 0, None)
    record = RunStore(ctx.runs_dir).record(run.config)
    RunStore(ctx.runs_dir).init(record)
    result = train_run(record, torch.device("cpu"))
    epoch = json.loads(record.path("metrics.jsonl").read_text().splitlines()[0])
    assert result["epochs"] == 1 and epoch["cf"] > 0 and epoch["loss"] == pytest.approx(epoch["ce"] + epoch["cf"])
    assert run.config.method_args["cfaug"]["loss_norm"] == "joint"  # cfaug's default (C-4), from its switches
