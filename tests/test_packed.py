"""Packed training (`repro.packed`): a pack of seeds gives each seed's one-by-one results, resumes every member
after a kill, and falls back to one by one where a model cannot be packed."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from repro import engine
from repro.data.registry import build_dataset
from repro.packed import Pack, packable, slice_optimizer_state, stack_optimizer_state
from repro.papers.actdiff import plans as actdiff
from repro.runs.launch import LaunchOptions, execute, packs
from repro.runs.store import DONE, PARTIAL, RunStore


def _configs(ctx, model: str, method: str, epochs: int = 3, seeds: int = 3):
    return [actdiff.synthetic_run(ctx, model, method, s).config.replace(epochs=epochs) for s in range(seeds)]


def _records(root: Path, configs):
    store = RunStore(root)
    records = [store.record(c) for c in configs]
    for r in records:
        store.init(r)
    return store, records


def _float64_data(name, args, seed, device, prepared_root):
    """The dataset in float64, its training images jittered by up to 1e-3 (seeded). Binary images tie
    exactly inside max-pool windows, and the pack's batched convolutions round differently from one model's
    (1e-17), which moves the input gradient to another of the tied pixels: an equally valid subgradient that
    gradmask's double backward then amplifies. Without ties a pack must equal one-by-one runs to rounding."""
    data = build_dataset(name, args, seed, device, prepared_root)
    cast = lambda t: t.double() if t.is_floating_point() else t  # noqa: E731
    jitter = torch.rand(data.x.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    data.x, data.mask = cast(data.x) + 1e-3 * jitter.to(data.x.device), cast(data.mask)
    data.evals = {k: (cast(x), y) for k, (x, y) in data.evals.items()}
    return data


def _values(record) -> list[float]:
    return [v for m in record.metrics() for k, v in sorted(m.items()) if k not in ("key", "seconds", "epoch")]


def _mixed(ctx):
    """CNN Classify, Gradmask at two lambdas and Classify Masked (other training images): one pack."""
    gradmask = _configs(ctx, "CNN", "Gradmask", seeds=2)
    objective = gradmask[1].method_args["objective"]
    lam3 = gradmask[1].replace(method_args={**gradmask[1].method_args,
                                            "objective": {"gradmask": {**objective["gradmask"], "weight": 3.0}}})
    return (_configs(ctx, "CNN", "Classify", seeds=1) + [gradmask[0], lam3]
            + _configs(ctx, "CNN", "Classify Masked", seeds=1))


@pytest.mark.parametrize("group", ["seeds", "mixed"])
def test_pack_equals_one_by_one_in_float64(tmp_path, smoke_ctx, monkeypatch, group):
    """seeds: CNN + Actdiff, two forward passes per step, recorded activations, per-member ROI shuffles;
    mixed: members with different penalties, lambdas and training images."""
    assert_pack_equals_one_by_one(tmp_path, smoke_ctx, monkeypatch, group, torch.device("cpu"), 1e-9)


def assert_pack_equals_one_by_one(tmp_path, ctx, monkeypatch, group: str, device: torch.device, tol: float) -> None:
    """Each member of a float64 pack trained on `device` ends with its one-by-one records and weights to `tol`."""
    monkeypatch.setattr(engine, "build_dataset", _float64_data)
    torch.set_default_dtype(torch.float64)
    try:
        configs = _configs(ctx, "CNN", "Actdiff") if group == "seeds" else _mixed(ctx)
        assert len(packs(_records(tmp_path / "plan", configs)[1], 8)) == 1
        _, alone = _records(tmp_path / "alone", configs)
        _, packed = _records(tmp_path / "packed", configs)
        for r in alone:
            engine.train_run(r, device)
        engine.train_pack(packed, device)
    finally:
        torch.set_default_dtype(torch.float32)
    for a, p in zip(alone, packed):
        assert p.result()["packed_with"] == len(configs) and a.result()["best_epoch"] == p.result()["best_epoch"]
        torch.testing.assert_close(torch.tensor(_values(p)), torch.tensor(_values(a)), rtol=tol, atol=tol)
        for k, v in torch.load(a.path("final.pt"), weights_only=True).items():
            torch.testing.assert_close(torch.load(p.path("final.pt"), weights_only=True)[k], v, rtol=tol, atol=tol)
    seeds = [_values(p) for p in packed]
    assert seeds[0] != seeds[1] != seeds[2]  # the members really are different runs


class TinyBnNet(nn.Module):
    """conv-BN-ReLU-conv, global average pool, linear: no max-pool, whose near-tied maxima in flat image
    regions can resolve differently under the packed and the plain convolution (float-level differences)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3))
        self.fc = nn.Linear(4, 2)
        self.record, self.activations = False, []

    def forward(self, x):
        a = self.body(x)
        self.activations = [a] if self.record else []
        return self.fc(a.mean((2, 3))), None


PENALTY_SPECS = [{"gradmask": {"weight": 3.0}}, {"rrr": {"weight": 2.0}}, {"rbr": {"weight": 5.0, "influence": "full"}},
                 {"tap": {"weight": 1.5}}]


@pytest.mark.parametrize("spec", PENALTY_SPECS)
def test_packed_objective_and_double_backward_equal_each_members(spec):
    assert_packed_step_equals_members(spec, torch.device("cpu"), rtol=1e-10, atol=1e-12)


def assert_packed_step_equals_members(spec: dict, device: torch.device, rtol: float, atol: float) -> None:
    """In float64 on `device`: a pack's loss parts and parameter gradients (double backward included) are each
    member's own, to (rtol, atol)."""
    from repro.methods import build_objective

    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(0)
        models = [TinyBnNet().to(device) for _ in range(3)]  # BN in every one: full RBR through `composite_batch_norm`
        xs, ys = torch.rand(3, 5, 1, 8, 8, device=device), torch.randint(0, 2, (3, 5), device=device)
        masks = (torch.rand(3, 5, 1, 8, 8, device=device) > 0.6).double()
        objective = build_objective(spec)
        gen = torch.Generator(device=device)
        pack = Pack([copy.deepcopy(m) for m in models])
        total, parts = objective(pack, xs.flatten(0, 1), ys.flatten(), masks.flatten(0, 1), [gen] * 3)
        grads = torch.autograd.grad(total, list(pack.parameters()))
        for i, m in enumerate(models):
            alone, alone_parts = objective(m, xs[i], ys[i], masks[i], gen)
            for k, v in alone_parts.items():
                torch.testing.assert_close(parts[k][i:i + 1], v, rtol=rtol, atol=atol)
            for g, a in zip(grads, torch.autograd.grad(alone, list(m.parameters()))):
                torch.testing.assert_close(g[i], a, rtol=rtol, atol=atol)
        assert parts["ce"][0] != parts["ce"][1]  # different members, different values
    finally:
        torch.set_default_dtype(torch.float32)


KILL_PACK = """
import os, sys, json
from pathlib import Path
import torch
from repro.config import RunConfig
from repro.engine import train_pack
from repro.runs.store import RunStore
torch.set_num_threads(2)
store = RunStore(Path(sys.argv[1]))
records = [store.record(RunConfig.from_dict(c)) for c in json.loads(Path(sys.argv[2]).read_text())]
def events(e):
    if e["event"] == "epoch" and e["epoch"] == 2:
        os.kill(os.getpid(), 9)
train_pack(records, torch.device(sys.argv[3]), events, checkpoint_seconds=0)
"""


def test_killed_pack_resumes_every_member(tmp_path, smoke_ctx):
    assert_killed_pack_resumes(tmp_path, smoke_ctx, "cpu")


def assert_killed_pack_resumes(tmp_path, ctx, device: str) -> None:
    """A pack killed (SIGKILL) after its second epoch on `device`, then resumed, ends with every member's records
    of an uninterrupted pack, bit for bit."""
    configs = _configs(ctx, "CNN", "Actdiff", epochs=4)
    ref_store, ref = _records(tmp_path / "ref", configs)
    execute(ref_store, ref, LaunchOptions(device=device, pack=3), lambda e: None)
    store, killed = _records(tmp_path / "kill", configs)
    (tmp_path / "cfgs.json").write_text(json.dumps([c.to_dict() for c in configs]))
    proc = subprocess.run([sys.executable, "-c", KILL_PACK, str(store.root), str(tmp_path / "cfgs.json"), device])
    assert proc.returncode == -signal.SIGKILL
    assert [r.state() for r in killed] == [PARTIAL] * 3
    assert len(packs(killed, 3)) == 1  # same config but the seed, same resume epoch: one pack
    execute(store, killed, LaunchOptions(device=device, pack=3), lambda e: None)
    for k, r in zip(killed, ref):
        assert k.state() == DONE and k.result()["packed_with"] == 3
        assert "resuming at epoch" in k.path("log.txt").read_text() and not list(k.dir.glob("*.corrupt-*"))
        assert _values(k) == _values(r)  # resumed pack == uninterrupted pack, bit for bit
        assert k.result()["final"] == r.result()["final"]


def test_packs_group_one_recipe_and_keep_impure_penalties_apart(tmp_path, smoke_ctx):
    pure = (_configs(smoke_ctx, "CNN", "Classify", seeds=4) + _configs(smoke_ctx, "CNN", "Gradmask", seeds=2)
            + _configs(smoke_ctx, "CNN", "Classify Masked", seeds=2))
    actdiff = _configs(smoke_ctx, "CNN", "Actdiff", seeds=2)  # its masked pass would move the others' state
    other_lr = [c.replace(lr=c.lr * 2) for c in _configs(smoke_ctx, "CNN", "Classify", seeds=1)]
    _, records = _records(tmp_path, pure + actdiff + other_lr)
    by_size = sorted(packs(records, 3), key=len)
    assert [len(p) for p in by_size] == [1, 2, 2, 3, 3]
    assert {r.config.method for p in by_size[1:] if len(p) == 2 for r in p} >= {"Actdiff"}
    assert all({r.config.method for r in p} <= {"Actdiff"} or "Actdiff" not in {r.config.method for r in p}
               for p in by_size)
    assert sorted(len(p) for p in packs(records, 8)) == [1, 2, 8]
    assert all(len(p) == 1 for p in packs(records, 1))


def test_dropout_models_are_not_packed_and_optimizer_state_round_trips():
    assert packable(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))) is not None
    models = [nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)) for _ in range(3)]
    assert packable(models[0]) is None
    opts = [torch.optim.Adam(m.parameters()) for m in models]
    for m, o in zip(models, opts):
        m(torch.rand(2, 1, 5, 5)).sum().backward()
        o.step()
    stacked = stack_optimizer_state([o.state_dict() for o in opts])
    for i, o in enumerate(opts):
        back = slice_optimizer_state(stacked, i, 3)
        for p, s in o.state_dict()["state"].items():
            for k, v in s.items():
                assert torch.equal(back["state"][p][k], v)
    pack = Pack(models)
    assert torch.equal(pack.member_state(1)["1.running_mean"], models[1].state_dict()["1.running_mean"])
