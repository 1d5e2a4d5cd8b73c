"""`repro cross` MaskTune and RandMask cells: the benchmarks' models name an XGradCAM layer without changing their
weights; a cell continues the benchmark's plain run (its own key, trained first when not done, reused when done)
from its last.pt for exactly one epoch, on masked (MaskTune) or cut-out (RandMask) training images."""

from __future__ import annotations

import pytest
import torch

from repro.data.registry import KEEP_LAST
from repro.engine import fit
from repro.models import build_model
from repro.papers import get_paper, load_all
from repro.papers.cross.benchmarks import BENCHMARKS, BY_NAME, cell_run
from repro.papers.cross.masks import MASKS
from repro.papers.masktune.xgradcam import cam_maps
from repro.runs import record as contract
from repro.runs.store import RunStore
from tests.conftest import SHARED_DATA

CPU = torch.device("cpu")
FOREIGN = ["decoy_mnist", "synth2"]  # the MNIST-sized benchmarks where MaskTune's cells are finetunes; the x-ray
# pages' (ResNet-18's cam_layer: layer4) train one step in tests/papers/cross/test_cells.py


@pytest.mark.parametrize("name,args,keys", [
    ("tap_cnn", {}, {"stages.0.0.weight", "stages.0.0.bias", "stages.1.0.weight", "stages.1.0.bias",
                     "head.1.weight", "head.1.bias"}),
    ("cnn", {"img_size": 28, "nc": 4}, {f"enc.{b}.conv{c}.{p}" for b in range(4) for c in (1, 2)
                                         for p in ("weight", "bias")} | {"fc.weight", "fc.bias"}),
])
def test_the_benchmark_models_name_a_post_relu_cam_layer_outside_their_state_dict(name, args, keys):
    load_all()
    model = build_model(name, **args)
    assert set(model.state_dict()) == keys
    assert any(m is model.cam_layer for m in model.modules())
    seen = []
    hook = model.cam_layer.register_forward_hook(lambda m, i, out: seen.append(out))
    maps = cam_maps(model, torch.rand(3, 1, 28, 28))
    hook.remove()
    assert maps.shape == (3, 28, 28) and float(maps.min()) >= 0 and float(maps.max()) <= 1
    assert bool((seen[0] >= 0).all())  # XGradCAM's channel weights assume non-negative activations


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """A smoke cross context whose runs dir holds decoy MNIST prepared from the shared MNIST."""
    from repro.papers.tap.mnist import prepare

    if not (SHARED_DATA / "MNIST").exists():
        pytest.skip("needs ../shared/data/MNIST")
    runs = tmp_path_factory.mktemp("finetune_runs")
    ctx = get_paper("cross").context("smoke", None, "code", {}, runs / "out", SHARED_DATA, runs)
    prepare(ctx)
    return ctx


def test_a_finetune_cell_names_its_plain_run_and_keeps_one_epoch(ctx):
    load_all()
    for bench in (BENCHMARKS[name] for name in FOREIGN):
        plain = bench.plain(ctx, 1).config
        for name, kind in (("MaskTune", "masktune"), ("RandMask", "randmask")):
            run = cell_run(ctx, bench, BY_NAME[name], 1, None)
            cfg, args = run.config, run.config.method_args
            assert (cfg.paper, cfg.epochs, cfg.selection, args["trainer"], args["finetune"]) == (
                "cross", 1, "final", "cross.finetune", kind)
            assert cfg.method_args["erm"] == plain.to_dict() and plain.dataset in KEEP_LAST
            assert not run.cell["home"] and MASKS[run.cell["mask"]].startswith("none (")
        assert cell_run(ctx, bench, BY_NAME["MaskTune"], 1, None).config.method_args["threshold_pixels"] == "positive"


@pytest.mark.parametrize("bench_name", FOREIGN)
def test_masktune_then_randmask_continue_the_plain_run_for_one_epoch(ctx, bench_name):
    from repro.engine import train_run
    from repro.papers.cross.finetune import FinetuneJob

    bench, store = BENCHMARKS[bench_name], RunStore(ctx.runs_dir)
    erm = store.record(bench.plain(ctx, 0).config)
    trained = []

    def stage(record):  # the launcher's path for the plain run: the default PackJob
        trained.append(record.key)
        return train_run(record, CPU)

    record = store.record(cell_run(ctx, bench, BY_NAME["MaskTune"], 0, None).config)
    store.init(record)
    job = FinetuneJob(record, CPU, stage)
    assert trained == [erm.key] and job.erm.key == erm.key and erm.path(contract.LAST).exists()
    last = torch.load(erm.path(contract.LAST), weights_only=False)
    start = job.states()[0]
    assert all(torch.equal(start["model"][k], v) for k, v in last["model"].items())
    assert start["optimizer"]["state"].keys() == last["optimizer"]["state"].keys() != set()
    results = {"MaskTune": fit(job, CPU, lambda e: None)[0]}
    erm_written = erm.path(contract.RESULT).stat().st_mtime_ns
    record = store.record(cell_run(ctx, bench, BY_NAME["RandMask"], 0, None).config)
    store.init(record)
    results["RandMask"] = train_run(record, CPU)  # through the cross study's job factory
    assert erm.path(contract.RESULT).stat().st_mtime_ns == erm_written  # the done plain run reused
    for name, res in results.items():
        record = store.record(cell_run(ctx, bench, BY_NAME[name], 0, None).config)
        assert (res["epochs"], res["best_epoch"], len(record.metrics())) == (1, 0, 1)
        assert res["best"] == res["final"] and res["erm_run"] == erm.key and res["stage"] == name.lower()
        for part, split in (bench.shifted(ctx), bench.correlated):
            assert 0 <= res[part][split]["accuracy"] <= 1
        tuned = torch.load(record.path(contract.FINAL), weights_only=True)
        assert any(not torch.equal(tuned[k], v) for k, v in last["model"].items())  # it trained
    assert 0 < results["MaskTune"]["masking"]["masked_fraction_mean"] < 0.5 and results["RandMask"]["masking"] == {}
