"""The training-step benchmark: counts its steps, runs the real penalties, catches CUDA OOM."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from repro.papers.tap import table1_timing as bm
from repro.methods import build_objective

CPU = torch.device("cpu")
SMALL = bm.Settings(batch_size=2, image_size=32, warmup=0, timed=1)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # 2 threads on a shared 2-core machine spin-wait badly


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return bm.build_for_timing("resnet18", SMALL)


def _updated(model, spec, s=SMALL):
    """The parameters of a copy of `model` after one benchmarked step with `spec` on the seeded batch."""
    net = copy.deepcopy(model)
    opt = torch.optim.SGD(net.parameters(), lr=s.lr, momentum=s.momentum)
    x, y, mask = bm.synthetic_batches(1, s)
    bm.measure(net, build_objective(spec), opt, bm.batch_source(x, y, mask, s, CPU), s, CPU)
    return torch.cat([p.detach().flatten() for p in net.parameters()])


@pytest.mark.parametrize("mode", bm.MODES)
def test_measure_runs_warmup_plus_timed_steps(resnet, mode):
    s = bm.Settings(batch_size=2, image_size=32, warmup=2, timed=3, mode=mode)
    objective = build_objective({})
    calls = []

    def counted(*args):
        calls.append(args[1].shape)
        return objective(*args)

    net = copy.deepcopy(resnet)
    opt = torch.optim.SGD(net.parameters(), lr=s.lr, momentum=s.momentum)
    x, y, mask = bm.synthetic_batches(s.warmup + s.timed, s)
    t = bm.measure(net, counted, opt, bm.batch_source(x, y, mask, s, CPU), s, CPU)
    assert len(calls) == 5 and t.steps == 3
    assert calls[0] == (2, 3, 32, 32)  # normalised and replicated to 3 channels
    assert t.it_s > 0 and t.it_s_mean > 0 and not t.oom
    assert math.isnan(t.mem_reserved_gb) and math.isnan(t.mem_allocated_gb) and not t.oom_10gb


@pytest.mark.parametrize("spec", [{"rrr": {"weight": 1.0}}, {"rbr": {"weight": 1.0}}, {"tap": {"weight": 1.0}}],
                         ids=["rrr", "rbr", "tap"])
def test_penalty_changes_the_update(resnet, spec):
    noxs = _updated(resnet, {})
    assert torch.equal(noxs, _updated(resnet, {}))  # the step itself is deterministic
    assert not torch.equal(noxs, _updated(resnet, spec))


def test_tag_masks_are_a_22x44_box_in_a_corner():
    m = bm.tag_masks(64, 224, torch.Generator().manual_seed(0))[:, 0]
    assert m.shape == (64, 224, 224) and (m.sum((1, 2)) == 22 * 44).all()
    rows, cols = m.any(2), m.any(1)
    first_row, first_col = rows.float().argmax(1), cols.float().argmax(1)
    assert set(first_row.tolist()) == {0, 202} and set(first_col.tolist()) == {0, 180}
    assert bm.tag_masks(4, 32, torch.Generator())[0].sum() == 3 * 6  # scaled with the image


def test_normalisation_is_the_pneu_loader_one():
    x = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2)
    out = bm.to_model_input(x)
    assert out.shape == (1, 3, 1, 2)
    assert torch.allclose(out[0, :, 0, 0], torch.full((3,), -0.5711 / 0.1523))
    assert torch.allclose(out[0, :, 0, 1], torch.full((3,), (1 - 0.5711) / 0.1523))


def test_out_of_memory_is_reported_not_raised(resnet, monkeypatch):
    def oom(*args):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(bm, "measure", oom)
    t = bm.benchmark(resnet, {}, SMALL, CPU)
    assert t.oom and t.oom_10gb and math.isnan(t.it_s) and t.steps == 0


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="device, loader"):
        bm.Settings(2, 32, 0, 1, mode="disk")
    with pytest.raises(ValueError, match="timed >= 1"):
        bm.Settings(2, 32, 0, 0)
