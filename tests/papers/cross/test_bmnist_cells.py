"""`repro cross biased_mnist`: its home cells are MaskTune's own runs (figure 2's keys); each foreign method trains
one step through MaskTune's ERM job with its objective and the masks derived from the batch; the table reads
MaskTune's accuracies (%) as fractions."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from repro.cli import app
from repro.engine import train_run
from repro.papers import get_paper, load_all
from repro.papers.cross.benchmarks import BIASED_MNIST, BY_NAME, cell_run, hosted, plan_benchmark
from repro.papers.cross.job import BiasedMnistJob, cross_job
from repro.papers.cross.masks import corner_square, square_digit_look
from repro.papers.masktune.plans import preparer, run_config
from repro.runs.store import RunStore
from tests.conftest import SHARED_DATA, new_record, plan_states, plant_done

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "MNIST").exists(), reason="needs ../shared/data/MNIST")
FOREIGN = [m.name for m in hosted(BIASED_MNIST) if m.name not in BIASED_MNIST.home_methods]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """A smoke cross context whose runs dir records biased MNIST's source (the shared MNIST)."""
    runs = tmp_path_factory.mktemp("bmnist_runs")
    ctx = get_paper("cross").context("smoke", None, "code", {}, runs / "out", SHARED_DATA, runs)
    preparer("biased_mnist")(ctx)
    return ctx


@pytest.mark.parametrize("fidelity", ["code", "paper"])
def test_home_cells_are_masktunes_own_runs(ctx, fidelity):
    """At either fidelity, MaskTune's switches take the values `repro masktune figure2` gives them."""
    cross, masktune = (get_paper(p).context("smoke", None, fidelity, {}, ctx.out, SHARED_DATA, ctx.runs_dir)
                       for p in ("cross", "masktune"))
    for method, home in BIASED_MNIST.home_methods.items():
        run = cell_run(cross, BIASED_MNIST, BY_NAME[method], 1, None)
        assert run.config == run_config(masktune, "biased_mnist", home, 1) and run.cell["home"]
    assert set(FOREIGN) == {"RRR", "RBR", "TAP", "Gradmask", "Actdiff", "Classify Masked", "CF(Tile)", "F(Shuffle)",
                            "Sal"}


class Spy(nn.Module):
    """The model, keeping the input of its last call."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.seen = model, None

    def forward(self, x):
        self.seen = x.detach().clone()
        return self.model(x)


@pytest.mark.parametrize("method", FOREIGN)
def test_each_foreign_method_trains_one_step_through_the_erm_job(ctx, method):
    m = BY_NAME[method]
    lam = m.grid(ctx)[0]
    config = cell_run(ctx, BIASED_MNIST, m, 0, lam).config
    plain = BIASED_MNIST.plain(ctx, 0).config  # MaskTune's ERM run: its recipe, the objective and trainer changed
    want = {**plain.method_args, **m.method_args(ctx, lam), "trainer": "cross.masktune_erm"}
    assert config.paper == "cross" and config.method_args == want
    assert config.data["mask"] == BIASED_MNIST.masks[m.reads] and config.data["name"] == "biased_mnist"
    load_all()
    job = cross_job(new_record(ctx.runs_dir, config), torch.device("cpu"), lambda r: None)
    assert isinstance(job, BiasedMnistJob)
    x, y = next(job.feeder.batches(job.ds.splits["train"], "train", job.gens[0]))
    x, y = x[:16], y[:16]
    torch.manual_seed(0)
    model = Spy(job.model) if m.masked_inputs else job.model
    loss, parts = job.objective(model, x, y, job.gens[0])
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert bool((x[:, 0, :4, :4] == 1).all(dim=(1, 2)).any())  # some training image carries the red square
    term = {"CF(Tile)": "cf"}.get(method, m.penalty)  # F's CE joins the originals' (cfaug C-4 joint)
    if term:
        assert float(parts[term].sum()) > 0, f"{method}'s term is 0 on biased MNIST"
    if m.masked_inputs:  # the model saw the batch inside the digit only: the square region blank
        assert torch.equal(model.seen, x * square_digit_look(x)) and float(model.seen[:, :, :4, :4].abs().sum()) == 0


def test_a_foreign_cell_trains_through_the_cross_job_and_logs_its_penalty(ctx):
    """One smoke run of TAP on biased MNIST (`train_run` routes it to the cross job): MaskTune's ERM result with
    accuracies on val and both test sets, and the TAP term in its epoch log."""
    load_all()
    run = cell_run(ctx, BIASED_MNIST, BY_NAME["TAP"], 0, BY_NAME["TAP"].grid(ctx)[0])
    record = new_record(ctx.runs_dir, run.config)
    result = train_run(record, torch.device("cpu"))
    assert set(result["best"]) == {"val", "test_original", "test_biased"}
    assert 0 <= BIASED_MNIST.value(result, BIASED_MNIST.shifted(ctx)) <= 1
    epoch = record.metrics()[-1]
    assert epoch["tap"] > 0 and "train_accuracy" not in epoch


def test_the_masks_on_real_images_split_the_square_from_the_digit(ctx):
    load_all()
    job = cross_job(new_record(ctx.runs_dir, cell_run(ctx, BIASED_MNIST, BY_NAME["TAP"], 0, 1e-3).config),
                    torch.device("cpu"), lambda r: None)
    x = next(job.feeder.batches(job.ds.splits["train"], "eval", job.gens[0]))[0]
    avoid, look = corner_square(x), square_digit_look(x)
    squared = (x[:, 0, :4, :4] == 1).all(dim=(1, 2)) & (x[:, 1:, :4, :4] == 0).all(dim=(1, 2, 3))
    assert bool(squared.any()) and bool((avoid[:, 0, :4, :4] == 1).all()) and float(avoid.sum()) == 16 * len(x)
    assert float((look * avoid).sum()) == 0 and bool((look.flatten(1).sum(1) > 0).all())  # every image has a digit


def test_the_dry_run_shows_the_home_cells_with_masktunes_run_keys(tmp_path):
    runner = CliRunner()
    common = ["--profile", "smoke", "--data-root", str(SHARED_DATA), "--runs-dir", str(tmp_path / "runs"),
              "--out", str(tmp_path / "out"), "--dry-run"]
    assert runner.invoke(app, ["data", "prepare", "masktune", "--data-root", str(SHARED_DATA), "--runs-dir",
                               str(tmp_path / "runs")]).exit_code == 0
    home = runner.invoke(app, ["masktune", "figure2", *common])
    cross = runner.invoke(app, ["cross", "biased_mnist", *common])
    assert home.exit_code == cross.exit_code == 0, home.output + cross.output
    assert plan_states(cross.output) == ["pending"] * len(hosted(BIASED_MNIST))
    masktune = get_paper("masktune").context("smoke", None, "code", {}, tmp_path, SHARED_DATA, tmp_path / "runs")
    for method, name in (("Classify", "erm"), ("MaskTune", "masktune"), ("RandMask", "randmask")):
        key = run_config(masktune, "biased_mnist", name, 0).key
        assert key in home.output and f"biased_mnist {method} s0" in cross.output
        assert next(line for line in cross.output.splitlines() if f"biased_mnist {method} s0" in line).count(key)


def test_the_table_reads_masktunes_percentages_as_fractions(ctx):
    """best val accuracy is the lambda score; the shifted metric is the biased test accuracy, the gap to val."""
    from repro.papers.cross.report import bench_frame

    store = RunStore(ctx.runs_dir)
    runs = plan_benchmark(ctx, BIASED_MNIST)
    for run in runs:
        if run.cell["method"] == "Classify":
            plant_done(store, run.config, best={"val": {"accuracy": 99.0}, "test_biased": {"accuracy": 40.0}})
    row = bench_frame(ctx, BIASED_MNIST, runs, store).set_index("method").loc["Classify"]
    assert row["shifted_mean"] == pytest.approx(0.40) and row["gap_mean"] == pytest.approx(-0.59)
    assert BIASED_MNIST.score(ctx, {"best": {"val": {"accuracy": 99.0}}}) == -99.0
    assert pd.isna(bench_frame(ctx, BIASED_MNIST, runs, store).set_index("method").loc["RBR", "shifted_mean"])
