"""The engine's step and recipe: a plain step is backward + optimiser step, clipping bounds the gradients' total
norm, the batch loop's tallies reduce as their papers did, and each lr schedule steps once per epoch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repro.engine import BatchMeans, MemberMeans, Schedule, Step, run_epoch


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x), None


def ce(model, x, y):
    loss = F.cross_entropy(model(x)[0], y)
    return loss, {"ce": loss.detach()}


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 3, generator=g) * 10, torch.randint(0, 2, (8,), generator=g)


def test_a_plain_step_is_backward_then_the_optimiser_step():
    a, b = Net(), Net()
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1)
    x, y = _batch()
    Step(a, ce, torch.optim.SGD(a.parameters(), lr=0.1))(x, y)
    F.cross_entropy(b(x)[0], y).backward()
    opt_b.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_clipping_bounds_the_gradients_total_norm():
    net = Net()
    x, y = _batch()
    step = Step(net, ce, torch.optim.SGD(net.parameters(), lr=0.0), clip=0.01)
    step(x, y)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in net.parameters()]))
    assert norm == pytest.approx(0.01, rel=1e-4)


def test_tallies_reduce_per_batch_or_per_member_sample():
    """Batches of 6 and 2 rows; as two members, 3 and 1 rows each."""
    net = Net()
    x, y = _batch()
    batches = [(x[:6], y[:6]), (x[6:], y[6:])]

    def rows(model, xb, yb):  # a loss of the batch's row count, with a part per member scaled by it
        loss = model(xb)[0].sum() * 0 + len(yb)
        return loss, {"a": torch.tensor([1.0, 2.0]) * len(yb)}

    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    by_batch = run_epoch(Step(net, lambda m, xb, yb: (rows(m, xb, yb)[0], {}), opt), batches,
                         BatchMeans(torch.device("cpu")))
    assert by_batch == [{"loss": pytest.approx(4.0)}]  # (6 + 2) / 2 batches
    members = run_epoch(Step(net, rows, opt), batches, MemberMeans(2, torch.device("cpu")))
    assert [m["a"] for m in members] == pytest.approx([(6 * 3 + 2 * 1) / 4, (12 * 3 + 4 * 1) / 4])
    assert [m["loss"] for m in members] == [m["a"] for m in members]  # the sum of the parts


@pytest.mark.parametrize("spec,lrs", [
    ({"kind": "multistep", "milestones": [1], "gamma": 0.1}, [1.0, 0.1, 0.1]),
    ({"kind": "plateau", "factor": 0.5, "patience": 0, "threshold": 1e-4}, [1.0, 1.0, 0.5]),
    ({"kind": "constant"}, [1.0, 1.0, 1.0]),
])
def test_each_schedule_steps_once_per_epoch(spec, lrs):
    opt = torch.optim.SGD(Net().parameters(), lr=1.0)
    schedule = Schedule(opt, spec)
    seen = []
    for _ in lrs:
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.end_epoch({"val": {"ce": 1.0}})  # a flat val CE: the first epoch sets the best, then plateaus
    assert seen == pytest.approx(lrs)
    with pytest.raises(ValueError, match="unknown lr schedule"):
        Schedule(opt, {"kind": "cosine"})
