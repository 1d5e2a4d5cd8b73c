"""MaskTune runs on the shared biased MNIST (smoke sizes): ERM resume, mask caching, the finetune's start
point and lr, RandMask cutouts, and the CLI's data errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from repro.engine import train_run
from repro.papers.masktune import train
from repro.papers.masktune.randmask import cutout
from repro.papers import get_paper
from repro.runs.store import RunStore
from tests.conftest import SHARED_DATA, Stop, new_record, stop_after_epoch

pytest.importorskip("pytorch_grad_cam")
pytestmark = pytest.mark.skipif(not (SHARED_DATA / "MNIST").exists(), reason="../shared/data not present")


@pytest.fixture
def mnist_ctx(tmp_path: Path):
    paper = get_paper("masktune")
    ctx = paper.context("smoke", None, "code", {}, tmp_path / "out", SHARED_DATA, tmp_path / "runs")
    paper.artefacts["figure2"].prepare(ctx)
    return ctx


def _record(ctx, method: str, seed: int = 0, **args):
    from repro.papers.masktune.plans import run_config
    cfg = run_config(ctx, "biased_mnist", method, seed)
    if args:
        cfg = cfg.replace(method_args={**cfg.method_args, **args})
    return new_record(ctx.runs_dir, cfg)


def test_erm_resumes_from_last_checkpoint_to_the_same_weights(mnist_ctx, tmp_path):
    rec = _record(mnist_ctx, "erm")
    dev = torch.device("cpu")
    with pytest.raises(Stop):
        train_run(rec, dev, stop_after_epoch(1), checkpoint_seconds=0, profile="smoke")
    assert rec.state() == "failed" and rec.path("checkpoint.pt").exists() and not rec.path("done").exists()
    train_run(rec, dev, profile="smoke")
    resumed = torch.load(rec.path("last.pt"), weights_only=False)
    assert resumed["epoch"] == 1 and len(rec.path("metrics.jsonl").read_text().splitlines()) == 2

    other = get_paper("masktune").context("smoke", None, "code", {}, tmp_path / "o2", SHARED_DATA, tmp_path / "runs2")
    get_paper("masktune").artefacts["figure2"].prepare(other)
    fresh = _record(other, "erm")
    train_run(fresh, dev, profile="smoke")
    straight = torch.load(fresh.path("last.pt"), weights_only=False)
    for k, v in straight["model"].items():
        torch.testing.assert_close(resumed["model"][k], v)


def _erm_lrs(ctx, rec) -> list[float]:
    import json

    erm = RunStore(ctx.runs_dir).record(train.erm_config(rec.config))
    return [json.loads(line)["lr"] for line in erm.path("metrics.jsonl").read_text().splitlines()]


def test_finetune_starts_from_last_erm_at_the_constant_lr_and_reuses_masks(mnist_ctx):
    rec = _record(mnist_ctx, "masktune")
    assert rec.config.method_args["lr_schedule"] == "code_constant"  # D-1 default: the scheduler is never stepped
    train_run(rec, torch.device("cpu"), profile="smoke")
    res = rec.result()
    erm = RunStore(mnist_ctx.runs_dir).record(train.erm_config(rec.config))
    assert erm.state() == "done" and res["erm_run"] == erm.key
    assert _erm_lrs(mnist_ctx, rec) == [0.01, 0.01] and res["finetune_lr"] == pytest.approx(0.01)
    masking = res["rounds"][0]["masking"]
    assert 0 < masking["masked_fraction_mean"] < 0.5
    caches = list((mnist_ctx.runs_dir / "masks").iterdir())
    assert len(caches) == 1 and (caches[0] / "masked.npy").exists()
    stamp = (caches[0] / "masked.npy").stat().st_mtime_ns
    again = _record(mnist_ctx, "masktune", rounds=2)  # a different run with the same round-1 masks
    train_run(again, torch.device("cpu"), profile="smoke")
    assert (caches[0] / "masked.npy").stat().st_mtime_ns == stamp  # reused, not rewritten
    assert len(again.result()["rounds"]) == 2
    assert len(list((mnist_ctx.runs_dir / "masks").iterdir())) == 2  # round 2 masks with the finetuned model


def test_paper_schedule_decays_before_the_finetune(mnist_ctx):
    rec = _record(mnist_ctx, "masktune", lr_schedule="paper")
    train_run(rec, torch.device("cpu"), profile="smoke")
    # smoke: 2 epochs, milestones [25, 50, 75] of 100 scaled to [1, 2]: two decays by 0.5 before the finetune
    assert rec.config.method_args["milestones"] == [1, 2]
    assert _erm_lrs(mnist_ctx, rec) == [0.01, 0.005] and rec.result()["finetune_lr"] == pytest.approx(0.01 * 0.25)


def test_cutout_zeroes_one_square_per_image():
    x = torch.ones(64, 3, 28, 28)
    out = cutout(x, torch.Generator().manual_seed(0))
    holes = (out[:, 0] == 0)
    assert torch.equal(holes[:, None].expand_as(out), out == 0)  # all channels together
    rows, cols = holes.any(2).sum(1), holes.any(1).sum(1)
    area = holes.sum((1, 2))
    assert torch.equal(area, rows * cols)  # a rectangle (a square clipped at the border)
    assert rows.max() <= 14 and (area > 0).all() and len(set(area.tolist())) > 3


def test_missing_data_root_and_bad_layout_exit_2_with_the_fix(tmp_path):
    from repro.cli import app
    from typer.testing import CliRunner

    runs = ["--runs-dir", str(tmp_path / "runs")]
    result = CliRunner().invoke(app, ["masktune", "figure2", *runs])
    assert result.exit_code == 2 and "pass --data-root DIR" in result.output
    (tmp_path / "bad" / "MNIST" / "raw").mkdir(parents=True)
    result = CliRunner().invoke(app, ["masktune", "figure2", *runs, "--data-root", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "no MNIST training images" in result.output and "download=True" in result.output


def test_in9l_recipe_switch_gives_the_paper_schedule_and_needs_its_lr(tmp_path):
    from repro.papers.masktune.plans import RECIPES, recipe
    def ctx(fidelity, **switches):
        return get_paper("masktune").context("paper", None, fidelity, switches, tmp_path / "o", None, tmp_path)

    assert recipe(ctx("code"), "in9l") == RECIPES["in9l"]  # bash: batch 128, constant lr 1e-4
    with pytest.raises(ValueError, match="in9l_lr=VALUE"):
        recipe(ctx("paper"), "in9l")
    r = recipe(ctx("paper", in9l_lr="0.1"), "in9l")
    assert (r["batch_size"], r["milestones"], r["gamma"], r["lr"]) == (1024, [30, 60, 90], 0.1, 0.1)
    assert recipe(ctx("paper"), "celeba") == RECIPES["celeba"]
