"""cfaug Figures 1, 6, 8, 9, 11, 12 on synthetic data: IN-9 end to end through the CLI (trains the two first-seed
smoke runs once), CCT and Waterbirds from planted predictions with known right/wrong patterns."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.papers import get_paper
from repro.papers.cfaug import report_examples as ex
from repro.papers.cfaug import report_figures as figs
from repro.runs.store import RunStore
from tests.conftest import plant_done

PAPER = get_paper("cfaug")


def _ctx(tmp: Path, out: str = "out"):
    return PAPER.context("smoke", None, "code", {}, tmp / out, None, runs_dir=tmp / "runs")


def _outputs(ctx, name: str) -> tuple[Path, dict[str, np.ndarray], dict]:
    path = ctx.out / "figures" / "cfaug" / f"{name}.png"
    assert path.stat().st_size > 0
    with np.load(path.with_suffix(".npz")) as z:
        return path, dict(z), json.loads(path.with_suffix(".json").read_text())


def _planned(ctx, name: str):
    art = PAPER.artefacts[name]
    art.prepare(ctx)
    return art.plan(ctx)


@pytest.fixture(scope="module")
def in9(tmp_path_factory):
    from typer.testing import CliRunner

    from repro.cli import app

    tmp = tmp_path_factory.mktemp("in9")
    res = CliRunner().invoke(app, ["cfaug", "figure6", "--profile", "smoke", "--runs-dir", str(tmp / "runs"),
                                   "--out", str(tmp / "out")])
    assert res.exit_code == 0, res.output
    return tmp


def test_figure6_end_to_end_shows_exactly_the_runs_right_wrong_examples(in9):
    ctx = _ctx(in9)
    runs = PAPER.artefacts["figure6"].plan(ctx)
    assert [r.cell["method"] for r in runs] == ["Orig", "CF(CAGAN)+F(Shuffle)+Sal"]
    store = RunStore(ctx.runs_dir)
    preds = [torch.load(store.record(r.config).path("predictions.pt"), weights_only=True)["mixed_next"] for r in runs]
    y = preds[0]["labels"]
    expected = np.flatnonzero(((preds[1]["logits"].argmax(1) == y) & (preds[0]["logits"].argmax(1) != y)).numpy())
    _, z, prov = _outputs(ctx, "figure6")
    n = min(len(expected), ex.K)
    assert z["indices"].tolist() == expected[:ex.K].tolist() and prov["candidates"] == len(expected)
    assert z["images"].shape == (n, 32, 32, 3) and z["best_top"].shape == z["orig_prob"].shape == (n, ex.TOP)
    assert prov["orig_run"] == store.record(runs[0].config).key and prov["best_run"] == store.record(runs[1].config).key
    assert prov["set_size"] == len(y) and prov["synthetic_data"] and prov["split"] == "mixed_next"
    assert (f"only {n} of the {ex.K}" in prov["note"]) == (n < ex.K)
    assert z["class_names"].tolist()[0] == "dog"


def test_figure1_prints_the_orig_models_real_probabilities_on_figure2s_images(in9):
    from repro.engine import load_weights

    ctx = _ctx(in9)
    runs = PAPER.artefacts["figure1"].plan(ctx)
    store = RunStore(ctx.runs_dir)
    ex.figure1(ctx, runs, store)
    _, z, prov = _outputs(ctx, "figure1")
    columns = ["Original", "CF Grey", "CF Random", "CF Shuffle", "CF Tile", "CF CAGAN", "F Random", "F Shuffle"]
    assert z["columns"].tolist() == columns and z["images"].shape == (figs.N_IMAGES, 8, 32, 32, 3)
    np.testing.assert_allclose(z["probs"].sum(-1), 1, atol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(z["probs"], z["labels"][:, None, None].repeat(8, 1), 2)[..., 0],
                               z["p_label"])
    model = load_weights(store.record(runs[0].config), "best")
    x = torch.from_numpy(z["images"][:, 0]).movedim(-1, -3) * 2 - 1  # the originals lie in [-1, 1]: invertible
    with torch.no_grad():
        p = model(x)[0].softmax(1)[torch.arange(len(x)), torch.from_numpy(z["labels"])]
    np.testing.assert_allclose(p.numpy(), z["p_label"][:, 0], atol=1e-4)
    assert prov["orig_run"] == store.record(runs[0].config).key and "CF panels" in prov["cf_lowers"]
    (fig2,) = figs.figure2(ctx, [], store, dataset="in9")  # the same images and generator draws as Figure 2
    with np.load(fig2.with_suffix(".npz")) as f2:
        assert f2["columns"].tolist()[:8] == columns and f2["indices"].tolist() == z["indices"].tolist()
        np.testing.assert_array_equal(f2["images"][:, :8], z["images"])


def _eval_set(ctx, run, split: str):
    """The run's `split` as the trainer builds it (its data settings, limit seed 0)."""
    from repro.papers.cfaug.data import load_cfaug

    d = run.config.data
    source = json.loads((ctx.runs_dir / "prepared" / d["prepared"] / "source.json").read_text())
    return load_cfaug(run.config.dataset, source["root"], size=d["size"], limits=d.get("limits"),
                      preproc=d["preproc"]).evals[split]


def _logits(labels: torch.Tensor, classes: int, right: torch.Tensor, seed: int) -> torch.Tensor:
    """Random logits whose top-1 is the label where `right`, the next class elsewhere."""
    z = torch.randn(len(labels), classes, generator=torch.Generator().manual_seed(seed))
    target = torch.where(right, labels, (labels + 1) % classes)
    z[torch.arange(len(labels)), target] += 10
    return z


def _plant(store: RunStore, run, split: str, logits: torch.Tensor, labels: torch.Tensor) -> None:
    """A done run folder with these selected-epoch predictions (best.pt is not read by these figures)."""
    rec = plant_done(store, run.config)
    torch.save({split: {"logits": logits, "labels": labels}}, rec.path("predictions.pt"))
    rec.path("best.pt").write_bytes(b"")


@pytest.fixture(scope="module")
def cct(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cct")
    ctx = _ctx(tmp)
    runs = _planned(ctx, "figure9")
    store = RunStore(ctx.runs_dir)
    y = torch.from_numpy(_eval_set(ctx, runs[0], "trans_test").labels)
    gen = torch.Generator().manual_seed(3)
    right = {"orig": torch.rand(len(y), generator=gen) < 0.4, "best": torch.rand(len(y), generator=gen) < 0.7}
    logits = {m: _logits(y, 15, r, k) for k, (m, r) in enumerate(right.items())}
    for run, m in zip(runs, ("orig", "best")):
        _plant(store, run, "trans_test", logits[m], y)
    expected = np.flatnonzero((right["best"] & ~right["orig"]).numpy())
    assert len(expected) > ex.K + 2  # enough for the random draw to choose
    return ctx, runs, store, y, logits, expected


def test_figure9_first_candidates_with_top5_and_cct_names(cct):
    ctx, runs, store, y, logits, expected = cct
    PAPER.artefacts["figure9"].build(ctx, runs, store)  # the registered builder
    _, z, prov = _outputs(ctx, "figure9")
    idx = z["indices"]
    assert idx.tolist() == expected[:ex.K].tolist() and prov["note"] == "" and prov["candidates"] == len(expected)
    assert (z["best_top"][:, 0] == y[idx].numpy()).all() and (z["orig_top"][:, 0] != y[idx].numpy()).all()
    p = logits["orig"][idx].softmax(1)
    np.testing.assert_allclose(z["orig_prob"], p.sort(1, descending=True).values[:, :ex.TOP], rtol=1e-5)
    assert (np.diff(z["best_prob"], axis=1) <= 0).all()
    assert z["class_names"].tolist()[:2] == ["species_1", "species_3"]  # the fixture JSON's category names
    ds = _eval_set(ctx, runs[1], "trans_test")
    np.testing.assert_array_equal(z["images"], figs.to_display(torch.stack([ds[int(i)]["x"] for i in idx])))


def test_figure12_draws_random_candidates_deterministically(cct):
    ctx, runs, store, y, _, expected = cct
    PAPER.artefacts["figure12"].build(ctx, runs, store)
    _, z, prov = _outputs(ctx, "figure12")
    idx = z["indices"]
    assert len(idx) == ex.K and set(idx) <= set(expected) and (np.diff(idx) > 0).all()
    assert idx.tolist() != expected[:ex.K].tolist()  # not simply the first ones
    assert "seed 2020" in prov["selection"]
    torch.manual_seed(99)  # the global RNG does not enter
    again = replace(ctx, out=ctx.out.parent / "again")
    ex.figure12(again, runs, store)
    _, z2, _ = _outputs(again, "figure12")
    for k in z:
        np.testing.assert_array_equal(z[k], z2[k], err_msg=k)
    mask = np.isin(np.arange(len(y)), expected)
    assert ex.pick(mask, ex.K, 2020).tolist() == idx.tolist() and ex.pick(mask, ex.K, 7).tolist() != idx.tolist()


def test_figure8_shows_the_fewer_examples_that_exist_and_says_so(tmp_path):
    ctx = _ctx(tmp_path)
    runs = _planned(ctx, "figure8")
    store = RunStore(ctx.runs_dir)
    y = torch.from_numpy(_eval_set(ctx, runs[0], "flip").labels)
    assert len(y) == 4
    _plant(store, runs[0], "flip", _logits(y, 2, torch.tensor([False, True, False, False]), 0), y)
    with pytest.raises(ValueError, match=r"run waterbirds CF\(CAGAN\)\+F\(Random\)\+Sal .* is not done"):
        ex.figure8(ctx, runs, store)
    with pytest.raises(ValueError, match="needs the waterbirds runs CF"):
        ex.figure8(ctx, runs[:1], store)
    _plant(store, runs[1], "flip", _logits(y, 2, torch.tensor([True, True, True, False]), 1), y)
    PAPER.artefacts["figure8"].build(ctx, runs, store)
    _, z, prov = _outputs(ctx, "figure8")
    assert z["indices"].tolist() == [0, 2] and z["images"].shape == (2, 32, 32, 3)
    assert z["best_top"].shape == (2, 2) and z["class_names"].tolist() == ["landbird", "waterbird"]
    assert prov["note"] == f"only 2 of the {ex.K} wanted exist" and prov["candidates"] == 2
    assert sorted(prov["run_keys"]) == sorted(store.record(r.config).key for r in runs)
