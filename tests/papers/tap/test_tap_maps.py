"""TAP Figures 4 and 1 (repro.papers.tap.report_maps) on tiny real preparations and fake done runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from repro.papers.tap.data_prepare_decoy import prepare_decoy_mnist
from repro.papers.tap.data_prepare_tagged import prepare_pneu
from repro.models import build_model
from repro.papers import get_paper
from repro.papers.tap.figure1 import plan_figure1
from repro.report.figures import new_figure
from repro.papers.tap.report_maps import box_of, figure1, figure4, outline_box
from repro.runs.store import RunStore
from tests.conftest import plant_done

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/data not present")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A runs dir with decoy MNIST (300 images per split) and PNEU (8 per split, no JPEG round trip)."""
    root = tmp_path_factory.mktemp("h4")
    prepare_decoy_mnist(DATA / "MNIST", root / "mnist_only" / "prepared" / "tap" / "decoy_mnist", limit=300)
    prepare_decoy_mnist(DATA / "MNIST", root / "both" / "prepared" / "tap" / "decoy_mnist", limit=300)
    prepare_pneu(DATA / "chest_xray", root / "both" / "prepared" / "tap" / "pneu", jpeg_quality=None, limit=8)
    return root


def _figure4(prepared: Path, which: str, tmp_path: Path) -> tuple[Path, dict, dict]:
    ctx = get_paper("tap").context("paper", None, "code", {}, tmp_path / "out", None, runs_dir=prepared / which)
    (png,) = figure4(ctx, [], RunStore(ctx.runs_dir))
    return png, dict(np.load(png.with_suffix(".npz"))), json.loads(png.with_suffix(".json").read_text())


def test_outline_box_surrounds_the_mask_pixels():
    mask = np.zeros((28, 28), np.uint8)
    mask[24:28, 0:4] = 1
    box = box_of(mask)
    assert box == (24, 0, 4, 4)
    fig, axes = new_figure(1, 1, (2, 2))
    rect = outline_box(axes[0][0], box)
    assert rect.get_xy() == (-0.5, 23.5) and (rect.get_width(), rect.get_height()) == (4, 4)


@needs_data
def test_figure4_with_only_mnist_prepared_notes_the_others(prepared, tmp_path):
    png, arrays, prov = _figure4(prepared, "mnist_only", tmp_path)
    assert png.exists() and png.stat().st_size > 10_000
    for dataset in ("pneu", "knee"):
        assert "not prepared" in prov["datasets"][dataset]["correlated"]
        assert not any(k.startswith(dataset) for k in arrays)
    decoy = np.load(prepared / "mnist_only" / "prepared" / "tap" / "decoy_mnist" / "decoyed_mnist.npz")
    for row, split in (("correlated", "test_cor"), ("permuted", "test")):
        images, masks, boxes = (arrays[f"decoy_mnist_{row}_{k}"] for k in ("images", "masks", "boxes"))
        labels, idx = arrays[f"decoy_mnist_{row}_labels"], arrays[f"decoy_mnist_{row}_indices"]
        assert labels.tolist() == [0, 2, 4, 7, 9] and prov["datasets"]["decoy_mnist"][row]["split"] == split
        assert np.array_equal(images, decoy[f"{split}_images"][idx])  # the fixed index addresses the split
        assert np.array_equal(masks, decoy[f"decoy_positions_{split}"][idx])
        for img, mask, (top, left, h, w), y in zip(images, masks, boxes, labels):
            assert (h, w) == (4, 4) and top in (0, 24) and left in (0, 24)
            assert mask[top:top + h, left:left + w].all() and mask.sum() == 16  # the box is exactly the patch
            if row == "correlated":  # the patch brightness encodes the label (spec §2.1)
                assert (img[top:top + h, left:left + w] == 255 - 25 * y).all()


@needs_data
def test_figure4_shows_pneu_tags_swapped_between_correlated_and_permuted(prepared, tmp_path):
    png, arrays, prov = _figure4(prepared, "both", tmp_path)
    pneu = prov["datasets"]["pneu"]
    assert pneu["correlated"]["split"] == "test_cor" and pneu["permuted"]["split"] == "test"
    assert pneu["correlated"]["indices"] == pneu["permuted"]["indices"]  # the same images, other tags
    assert [c.split("tag ")[1] for c in pneu["correlated"]["captions"]] == ["ABC", "XYZ"]
    assert [c.split("tag ")[1] for c in pneu["permuted"]["captions"]] == ["XYZ", "ABC"]
    for row in ("correlated", "permuted"):
        boxes, masks = arrays[f"pneu_{row}_boxes"], arrays[f"pneu_{row}_masks"]
        assert [tuple(b[2:]) for b in boxes] == [(22, 44)] * 2
        assert all(m.sum() == 22 * 44 and m[t:t + h, l:l + w].all() for m, (t, l, h, w) in zip(masks, boxes))
    clean = pd.read_csv(prepared / "both" / "prepared" / "tap" / "pneu" / "clean" / "test.csv")
    for img, (t, l, h, w), i in zip(arrays["pneu_permuted_images"], arrays["pneu_permuted_boxes"],
                                    arrays["pneu_permuted_indices"]):
        plain = np.asarray(Image.open(prepared / "both" / "prepared" / "tap" / "pneu" / clean["img_path"][i]))
        changed = np.argwhere(img != plain)  # the drawn tag lies inside the outlined box
        assert len(changed) and (changed.min(0) >= (t, l)).all() and (changed.max(0) < (t + h, l + w)).all()
    assert "not prepared" in prov["datasets"]["knee"]["permuted"]


def _fake_done(store: RunStore, run, val_ce: float, seed: int) -> None:
    """A done run with untrained (0-step) weights and the one result field the lambda choice reads."""
    torch.manual_seed(seed)
    rec = plant_done(store, run.config, final={"valid": {"ce": val_ce}})
    torch.save(build_model(run.config.model, **run.config.model_args).state_dict(), rec.path("final.pt"))


@needs_data
def test_figure1_on_fake_done_runs_writes_maps_with_one_scale_per_column(prepared, tmp_path):
    ctx = get_paper("tap").context("smoke", None, "code", {}, tmp_path / "out", None,
                                   runs_dir=prepared / "both", init="random", device="cpu")
    store = RunStore(ctx.runs_dir)
    sweep = plan_figure1(ctx)
    assert {r.cell["method"] for r in sweep} == {"RRR", "RBR", "TAP"}
    assert all(r.cell["arch"] == "resnet18" and r.cell["dataset"] == "pneu" and r.cell["seed"] == 0 for r in sweep)
    for i, run in enumerate(r for r in sweep if r.cell["method"] != "TAP"):  # TAP's sweep is left undone
        _fake_done(store, run, 0.5, i)
    runs = plan_figure1(ctx)
    (png,) = figure1(ctx, runs, store)
    arrays, prov = dict(np.load(png.with_suffix(".npz"))), json.loads(png.with_suffix(".json").read_text())
    assert png.stat().st_size > 10_000 and prov["missing_methods"] == ["TAP"] and prov["lambdas"]["TAP"] is None
    assert arrays["images"].shape == (3, 32, 32) and arrays["indices"].tolist() == [0, 1, 5]
    for column in ("ig", "act1", "act2", "act3", "act4"):
        rrr, rbr = arrays[f"RRR_{column}"], arrays[f"RBR_{column}"]
        assert rrr.shape == (3, 32, 32) and not np.allclose(rrr, rbr)  # two different models
        assert np.allclose(arrays[f"vmax_{column}"], np.maximum(rrr, rbr).max((1, 2)))
    assert all(m[t:t + h, l:l + w].all() for m, (t, l, h, w) in zip(arrays["masks"], arrays["boxes"]))
