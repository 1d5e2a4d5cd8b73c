"""`repro cross`: each listed method trains one step on every benchmark it is listed for, with the mask its family
reads; home cells are the paper artefacts' runs; the tables list every method without a cell with its reason."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from repro.cli import app
from repro.data.registry import build_dataset
from repro.methods import build_objective
from repro.models import build_model
from repro.papers import get_paper, load_all
from repro.papers.cross import plan_all
from repro.papers.cross.finetune import keep_of
from repro.papers.cross.job import ResidentCfaug
from repro.papers.masktune.randmask import cutout
from repro.papers.cross.benchmarks import (BENCHMARKS, BENCHMARKS_NOT_YET, BY_NAME, METHODS, XRAY_LEFT_OUT,
                                           cell_run, hosted, plan_benchmark)
from repro.papers.cross.masks import tag_band_look
from repro.papers.masktune.plans import preparer as masktune_preparer
from repro.papers.tap.mnist import prepare
from repro.papers.tap.data_prepare_tagged import prepare_knee, prepare_pneu
from repro.papers.tap.xray import prepared_folder
from repro.runs.prepared import prepared_root
from tests.conftest import SHARED_DATA, copy_knee_splits, plan_states

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "MNIST").exists(), reason="needs ../shared/data/MNIST")
# every benchmark trained by PackJob; biased MNIST's cells (MaskTune's job): test_bmnist_cells.py
CELLS = [(b, m.name) for b, bench in BENCHMARKS.items() if bench.trainer is None for m in hosted(bench)]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """A smoke cross context whose runs dir holds decoy MNIST and biased MNIST's source, prepared from the shared
    MNIST, and PNEU and KNEE from a few shared x-rays (4 per split; 2 per grade and split); the x-ray models from
    random init."""
    runs = tmp_path_factory.mktemp("cross_runs")
    ctx = get_paper("cross").context("smoke", None, "code", {}, runs / "out", SHARED_DATA, runs, init="random")
    prepare(ctx)
    masktune_preparer("biased_mnist")(ctx)
    prepare_pneu(SHARED_DATA / "chest_xray", prepared_folder(ctx, "pneu"), jpeg_quality=None, limit=4)
    prepare_knee(copy_knee_splits(runs / "knee_raw", 2), prepared_folder(ctx, "knee"))
    return ctx


def test_every_method_of_the_slice_is_listed_on_every_benchmark():
    for bench in BENCHMARKS.values():
        assert {m.name for m in hosted(bench)} | set(bench.not_hosted) == {m.name for m in METHODS}
    assert set(BENCHMARKS["decoy_mnist"].home_methods) == {"Classify", "RRR", "RBR", "TAP"}
    assert set(BENCHMARKS["synth2"].home_methods) == {"Classify", "Gradmask", "Actdiff", "Classify Masked"}
    assert BENCHMARKS["pneu"].home_methods == BENCHMARKS["knee"].home_methods == BENCHMARKS["decoy_mnist"].home_methods
    assert set(BENCHMARKS["knee"].not_hosted) == {"Gradmask"}  # 5 KL grades
    assert not BENCHMARKS["pneu"].not_hosted  # 2 classes
    assert set(BENCHMARKS["biased_mnist"].home_methods) == {"Classify", "MaskTune", "RandMask"}


@pytest.mark.parametrize("bench_name,method", CELLS)
def test_each_listed_method_trains_one_step(ctx, bench_name, method):
    bench = BENCHMARKS[bench_name]
    m = BY_NAME[method]
    config = cell_run(ctx, bench, m, 0, m.grid(ctx)[0]).config
    assert (config.paper == bench.home) == (method in bench.home_methods)
    load_all()
    torch.manual_seed(0)
    data = build_dataset(config.dataset, config.data, 0, torch.device("cpu"), prepared_root(ctx.runs_dir))
    model = build_model(config.model, **config.model_args)
    if m.cfaug is None:
        objective = build_objective(config.method_args["objective"])
    else:  # cfaug's own objective, as its job builds it
        assert config.method_args["trainer"] == "cross.cfaug"
        objective = ResidentCfaug(config.method_args["cfaug"])
    x, y, mask = data.batch(data.x[:16]), data.y[:16], data.mask[:16]
    if m.finetune == "masktune":  # the plain run's objective on its images with its XGradCAM's salient pixels blacked
        keep = keep_of(model, data, 16, config.method_args)[:16]
        x = data.batch((data.x[:16] * keep[:, None]).to(data.x.dtype))
        assert keep.shape == data.x[:16, 0].shape and not config.method_args["objective"]
    elif m.finetune == "randmask":  # a square cut out of each image
        x = cutout(x, torch.Generator().manual_seed(0))
        assert bool((x == 0).flatten(1).any(1).all())
    loss, parts = objective(model, x, y, mask, [torch.Generator().manual_seed(0)])
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    term = {"CF(Tile)": "cf"}.get(method, m.penalty)  # F's CE joins the originals' (C-4 joint)
    if term:
        assert float(parts[term].sum()) > 0, f"{method}'s term is 0 on {bench_name}"
    plain = bench.plain(ctx, 0).config  # the home dataset with its own annotation
    own = build_dataset(plain.dataset, plain.data, 0, torch.device("cpu"), prepared_root(ctx.runs_dir)).mask[:16]
    if m.reads == ("look" if bench_name == "synth2" else "avoid"):
        assert torch.equal(mask, own)  # the home paper's own annotation
    elif m.reads == "look" and bench_name in ("pneu", "knee"):  # the rows outside the tag's, never the tag
        assert torch.equal(mask, tag_band_look(own)) and not bool((mask & own).any()) and bool(mask.any())
    elif m.reads == "look":  # decoy MNIST: the digit, never the patch
        assert float((mask * own).sum()) == 0 and float(mask.sum()) > 0
    elif m.reads == "avoid":  # synth2: everything outside the crosses' ROI
        assert torch.equal(mask, 1 - own)
    if m.masked_inputs:
        assert bool((data.x[:16][data.mask[:16] != 1] == 0).all())  # trained on the inputs inside the mask only


def test_a_home_cell_reuses_the_paper_artefacts_run(tmp_path):
    """`repro tap figure5 --profile smoke`, then `repro cross decoy_mnist --profile smoke --dry-run` shows the
    home cells done and only the foreign ones to train."""
    runner = CliRunner()
    common = ["--profile", "smoke", "--data-root", str(SHARED_DATA), "--runs-dir", str(tmp_path / "runs"),
              "--out", str(tmp_path / "out")]
    res = runner.invoke(app, ["tap", "figure5", *common, "--device", "cpu"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["cross", "decoy_mnist", *common, "--dry-run"])
    assert res.exit_code == 0, res.output
    decoy = BENCHMARKS["decoy_mnist"]
    foreign = [m for m in hosted(decoy) if m.name not in decoy.home_methods]
    assert plan_states(res.output) == ["done"] * len(decoy.home_methods) + ["pending"] * len(foreign)
    assert "decoy_mnist TAP lambda=0.001 s0" in res.output and "decoy_mnist Actdiff lambda=10 s0" in res.output


def test_the_tables_list_every_method_and_benchmark_without_a_cell(ctx, tmp_path):
    """Built from no done runs: every hosted method says so, every other one gives its reason."""
    from repro.papers.cross.report import COLUMNS, benchmark_table, matrix
    from repro.runs.store import RunStore

    runs = [r for b in BENCHMARKS.values() for r in plan_benchmark(ctx, b)]
    paths = matrix(ctx, runs, RunStore(ctx.runs_dir))
    table = pd.read_csv(paths[0], keep_default_na=False)
    notes = dict(zip(table["benchmark"] + "/" + table["method"], table["note"]))
    assert notes["decoy_mnist/Gradmask"].startswith("no cell: its saliency is the two-class logit contrast")
    for bench in BENCHMARKS:
        assert notes[f"{bench}/TAP"].endswith("no done runs yet")
    assert all(notes[f"{name}/"] == why for name, why in BENCHMARKS_NOT_YET.items())
    assert paths[1].exists() and paths[1].with_suffix(".json").exists()
    table, figure = benchmark_table("synth2", ctx, runs, RunStore(ctx.runs_dir))
    rows = pd.read_csv(table, keep_default_na=False)
    assert list(rows.columns) == COLUMNS and len(rows) == len(METHODS) and figure.exists()
    assert set(rows.loc[rows["home"], "method"]) == set(BENCHMARKS["synth2"].home_methods)
    quick = replace(ctx, profile="quick")  # the x-ray pages are left out, with the reason, however their data stand
    assert {r.cell["benchmark"] for r in plan_all(quick)} == {"decoy_mnist", "synth2", "biased_mnist"}
    notes = pd.read_csv(matrix(quick, plan_all(quick), RunStore(ctx.runs_dir))[0], keep_default_na=False)
    assert notes.loc[notes["method"] == "", ["benchmark", "note"]].values.tolist()[:2] == [
        ["pneu", XRAY_LEFT_OUT["quick"]], ["knee", XRAY_LEFT_OUT["quick"]]]


def test_each_benchmark_chooses_lambda_by_its_home_protocol(ctx):
    """Paper grids: decoy MNIST takes the lowest final-epoch permuted-val CE (TAP), synth2 the best valid accuracy
    (actdiff); None until the whole sweep is done; one-value grids need no sweep."""
    from repro.papers.cross.benchmarks import chosen_lambda, sweep
    from repro.papers.tap.mnist import chosen_lambdas
    from repro.runs.store import RunStore
    from tests.conftest import plant_done

    paper = get_paper("cross").context("paper", None, "code", {}, ctx.out, SHARED_DATA, ctx.runs_dir)
    store = RunStore(ctx.runs_dir)
    decoy, synth = BENCHMARKS["decoy_mnist"], BENCHMARKS["synth2"]
    tap_runs, rrr_runs = sweep(paper, decoy, BY_NAME["TAP"]), sweep(paper, synth, BY_NAME["RRR"])
    assert len(tap_runs) == len(rrr_runs) == 10 and sweep(paper, decoy, BY_NAME["Actdiff"]) == []
    assert chosen_lambda(paper, decoy, BY_NAME["Actdiff"]) == 10.0
    for i, run in enumerate(tap_runs[:-1]):
        plant_done(store, run.config, final={"valid": {"ce": abs(i - 3) + 1.0}})
    assert chosen_lambda(paper, decoy, BY_NAME["TAP"]) is None  # one sweep run not done
    plant_done(store, tap_runs[-1].config, final={"valid": {"ce": 9.0}})
    assert chosen_lambda(paper, decoy, BY_NAME["TAP"]) == tap_runs[3].cell["lambda"]
    assert chosen_lambdas(paper)["TAP"] == tap_runs[3].cell["lambda"]  # TAP's own choice from the same (home) runs
    for i, run in enumerate(rrr_runs):
        plant_done(store, run.config, best={"valid": {"accuracy": 0.9 if i in (5, 7) else 0.5}})
    assert chosen_lambda(paper, synth, BY_NAME["RRR"]) == rrr_runs[5].cell["lambda"]  # the first of equal bests


def test_a_failed_cell_says_so_with_its_error(ctx):
    """A diverged run (its failure recorded) is named in its row's note, not left as "no done runs yet"."""
    from repro.papers.cross.report import bench_frame
    from repro.runs import record as contract
    from repro.runs.store import RunStore

    bench, store = BENCHMARKS["synth2"], RunStore(ctx.runs_dir)
    runs = plan_benchmark(ctx, bench)
    run = next(r for r in runs if r.cell["method"] == "RRR")
    record = store.record(run.config)
    store.init(record)
    record.path(contract.FAILED).write_text("Traceback ...\nNonFiniteLoss: loss is nan at epoch 0\n")
    table = bench_frame(ctx, bench, runs, store)
    notes = dict(zip(table["method"], table["note"]))
    assert notes["RRR"].startswith("1 of 1 runs failed (NonFiniteLoss: loss is nan at epoch 0)")
    assert notes["TAP"] == "D-2 = direct (paper Eq. 7): the code's chained mask schedule cannot reach the CNN's 3x3 " \
        "layers from its 7x7 ones (it resizes by whole pooling factors); no done runs yet"


def test_a_budget_changes_every_cell_of_its_benchmark_under_its_profile_only(ctx):
    """Decoy MNIST's quick budget (1 epoch): its home cells, foreign cells and the runs MaskTune finetunes alike;
    none at smoke, where the home cells stay TAP's own runs."""
    decoy = BENCHMARKS["decoy_mnist"]
    quick = replace(ctx, profile="quick")
    changes, why = decoy.budget["quick"]
    for name in ("Classify", "TAP", "Actdiff", "Sal"):
        m = BY_NAME[name]
        run = cell_run(quick, decoy, m, 0, m.grid(quick)[0])
        assert run.config.epochs == changes["epochs"] == 1 and run.n_train == run.config.data["train_limit"] == 2250
        assert run.config.data["eval_limit"] == decoy.plain(quick, 0).config.data["eval_limit"]  # the rest kept
        assert cell_run(ctx, decoy, m, 0, m.grid(ctx)[0]).config.epochs == decoy.plain(ctx, 0).config.epochs
    assert cell_run(quick, decoy, BY_NAME["MaskTune"], 0, None).config.method_args["erm"]["epochs"] == 1
    assert "not `repro tap figure5 --profile quick`'s runs" in why
