"""cfaug's terms are registry entries (`repro.papers.cfaug.terms`): the objective composes the registered ones its
settings name, and a term written in a test, registered and named in a run config, trains a cfaug run."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from repro.engine import train_run
from repro.methods import METHODS, register_method
from repro.papers import get_paper
from repro.papers.cfaug.losses import CfaugMethod, CfaugObjective, Counterfactual, Factual, Saliency, step_loss
from repro.papers.cfaug.plans import ROWS, run_config
from repro.papers.cfaug.sources import source_for
from repro.papers.cfaug.terms import Augmentation, Regulariser, TermBatch
from repro.runs.store import RunStore
from tests.papers.cfaug.test_losses import Linear, gen, make_batch

NAME = "cfaug.test_logit_l2"


@pytest.fixture
def logit_l2():
    """A regulariser: weight * the originals' mean squared logit, registered under NAME for the test only."""
    calls = []

    @register_method(NAME)
    class LogitL2(Regulariser):
        part = "logit_l2"

        def __init__(self, method: CfaugMethod, weight: float):
            super().__init__(method)
            self.weight = weight

        def __call__(self, tb: TermBatch) -> Tensor:
            calls.append(len(tb.y))
            return self.weight * tb.logits.float().pow(2).mean()

    yield calls
    METHODS.pop(NAME)


def test_the_objective_composes_the_registered_terms_its_settings_name():
    terms = CfaugObjective(CfaugMethod(cf="grey", f="random", sal=1.0)).terms
    assert [type(t) for t in terms] == [Counterfactual, Factual, Saliency]
    assert all(METHODS[f"cfaug.{t.part}"] is type(t) for t in terms)
    with pytest.raises(ValueError, match="not a cfaug term"):
        CfaugObjective(CfaugMethod(terms={"cfaug": {}}))
    with pytest.raises(ValueError, match="combines with no other term"):
        CfaugObjective(CfaugMethod(ls=0.1, terms={"cfaug.sal": {}}))


def test_an_augmentation_registered_in_a_test_joins_the_loss_by_the_runs_normalisation():
    """A labelled augmentation (horizontal flips) adds its CE to the originals' under `joint` normalisation and is
    its own part under `separate`; made after CF, from the same originals."""

    @register_method("cfaug.test_flip")
    class Flip(Augmentation):
        part, labelled = "flip", True

        def images(self, tb: TermBatch) -> Tensor:
            return tb.x[tb.eligible].flip(-1)

        def loss_sum(self, logits: Tensor, y: Tensor) -> Tensor:
            return F.cross_entropy(logits.float(), y, reduction="sum")

    try:
        model, b = Linear(), make_batch()
        idx = b["has_bbox"].nonzero(as_tuple=True)[0]
        flips, y_k = b["x"][idx].flip(-1), b["y"][idx]
        ce = F.cross_entropy(model(torch.cat([b["x"], flips]))[0], torch.cat([b["y"], y_k]), reduction="sum")
        total, parts = step_loss(model, b, CfaugMethod(terms={"cfaug.test_flip": {}}), gen())
        assert set(parts) == {"ce"} and torch.allclose(total, ce / (len(b["x"]) + len(idx)), rtol=1e-6)
        both = CfaugMethod(cf="grey", terms={"cfaug.test_flip": {}}, loss_norm="separate")
        total, parts = step_loss(model, b, both, gen())
        assert list(parts) == ["ce", "flip", "cf"]
        want = F.cross_entropy(model(flips)[0], y_k)
        assert torch.allclose(parts["flip"], want, rtol=1e-6) and torch.allclose(total, sum(parts.values()))
    finally:
        METHODS.pop("cfaug.test_flip")


def test_a_term_registered_in_a_few_lines_trains_a_cfaug_run(tmp_path, logit_l2):
    paper = get_paper("cfaug")
    ctx = paper.context("smoke", None, "code", {}, tmp_path / "out", None, tmp_path / "runs")
    paper.prepare(ctx)
    row = next(r for r in ROWS["waterbirds"] if r.method == "CF(Grey)")
    config = run_config(ctx, "waterbirds", row, 5, source_for(ctx, "waterbirds"))
    config = config.replace(method_args={**config.method_args, "terms": {NAME: {"weight": 0.5}}})
    store = RunStore(tmp_path / "runs")
    record = store.record(config)
    store.init(record)
    train_run(record, torch.device("cpu"))
    assert record.state() == "done"
    assert logit_l2 and all(n > 0 for n in logit_l2)  # the engine's step called the term on every batch
    (epoch,) = record.metrics()
    assert epoch["logit_l2"] > 0
    assert math.isclose(epoch["loss"], epoch["ce"] + epoch["cf"] + epoch["logit_l2"], rel_tol=1e-5)
