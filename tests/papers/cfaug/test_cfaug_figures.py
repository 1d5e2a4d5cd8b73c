"""cfaug Figures 2 and 3 from synthetic data in the official layouts: files, shapes, real generator outputs,
determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.papers.cfaug.fixtures import write_fixtures
from repro.papers.cfaug.generators import rect
from repro.papers.cfaug.sources import record_source
from repro.data.image_sets import DatasetError
from repro.papers import get_paper
from repro.papers.cfaug import report_figures as figs
from repro.runs.store import RunStore

CF = ["CF Grey", "CF Random", "CF Shuffle", "CF Tile", "CF CAGAN"]
F = ["F Random", "F Shuffle", "F Mixed-Rand", "F FGSM"]


def _ctx(tmp: Path, datasets: tuple[str, ...], out: str = "out"):
    runs = tmp / "runs"
    for d in datasets:
        root = tmp / "data" / d
        if not root.exists():
            write_fixtures(root, d)
        record_source(d, root, runs, synthetic=True)
    return get_paper("cfaug").context("smoke", None, "code", {}, tmp / out, None, runs_dir=runs)


def _build(fn, ctx, **kwargs) -> tuple[Path, dict[str, np.ndarray]]:
    (path,) = fn(ctx, [], RunStore(ctx.runs_dir), **kwargs)
    with np.load(path.with_suffix(".npz")) as z:
        return path, dict(z)


@pytest.mark.parametrize("dataset", ["in9", "cct"])
def test_figure2_shows_the_generators_real_outputs(tmp_path, dataset):
    ctx = _ctx(tmp_path, (dataset,))
    path, z = _build(figs.figure2, ctx)
    assert path == ctx.out / "figures" / "cfaug" / "figure2.png" and path.stat().st_size > 0
    prov = json.loads(path.with_suffix(".json").read_text())
    assert prov["dataset"] == dataset and prov["synthetic_data"] and "untrained" in prov["fgsm_model"]
    columns = z["columns"].tolist()
    assert columns == ["Original"] + CF + F  # the fixtures carry CAGAN infills
    images, masks = z["images"], z["masks"]
    assert images.shape == (figs.N_IMAGES, len(columns), 32, 32, 3) and masks.shape == (figs.N_IMAGES, 32, 32)
    assert 0 <= images.min() and images.max() <= 1 and (masks.reshape(len(masks), -1).max(1) == 1).all()
    assert len(set(z["labels"].tolist())) == figs.N_IMAGES  # one image per class
    original = images[:, 0]
    keep_cf = (1 - rect(torch.from_numpy(masks))).numpy().astype(bool)
    fg = masks.astype(bool)
    for name in CF[:4]:  # CAGAN is the precomputed image itself
        panel = images[:, columns.index(name)]
        np.testing.assert_array_equal(panel[keep_cf], original[keep_cf], err_msg=name)
        assert not np.array_equal(panel, original) or name == "CF Tile", name  # Tile may hit the x=0 bug
    for name in F:
        panel = images[:, columns.index(name)]
        np.testing.assert_allclose(panel[fg], original[fg], atol=1e-6, err_msg=name)
        assert np.abs(panel[~fg] - original[~fg]).max() > 0.05, name
    grey = images[:, columns.index("CF Grey")]
    np.testing.assert_allclose(grey[~keep_cf], 0.5)  # Grey fills the rectangle with mid-grey


def test_figure2_is_deterministic_and_defaults_to_the_first_prepared_dataset(tmp_path):
    ctx = _ctx(tmp_path, ("waterbirds", "cct"))
    a_path, a = _build(figs.figure2, ctx)
    assert json.loads(a_path.with_suffix(".json").read_text())["dataset"] == "waterbirds"  # in9 not prepared
    assert a["labels"].tolist()[:2] == [0, 1] and len(set(a["indices"].tolist())) == figs.N_IMAGES  # 2 classes
    torch.manual_seed(123)  # the global RNG does not enter
    _, b = _build(figs.figure2, _ctx(tmp_path, (), "out2"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_figure2_without_any_prepared_dataset_says_so(tmp_path):
    with pytest.raises(DatasetError, match="no cfaug dataset is prepared"):
        figs.figure2(_ctx(tmp_path, ()), [], RunStore(tmp_path / "runs"))


def test_figure2_leaves_cagan_out_without_infills(tmp_path):
    import shutil

    root = write_fixtures(tmp_path / "data" / "in9", "in9")
    shutil.rmtree(root / "bg_challenge" / "train" / "original_bbox_cf_cagan")
    ctx = _ctx(tmp_path, ("in9",))
    path, z = _build(figs.figure2, ctx)
    assert "CF CAGAN" not in z["columns"].tolist() and z["images"].shape[1] == 1 + 4 + len(F)
    assert "CF CAGAN left out" in json.loads(path.with_suffix(".json").read_text())["note"]


def test_figure3_shows_one_foreground_across_the_test_variants(tmp_path):
    ctx = _ctx(tmp_path, ("in9",))
    path, z = _build(figs.figure3, ctx)
    assert path.name == "figure3.png" and path.with_suffix(".json").exists()
    images, idx, files = z["images"], z["indices"], z["files"]
    assert images.shape == (len(figs.FIGURE3_CLASSES), 4, 32, 32, 3) and (idx >= 0).all()
    assert z["labels"].tolist() == list(figs.FIGURE3_CLASSES) and z["columns"].tolist() == [
        "original", "mixed_same", "mixed_rand", "mixed_next"]
    for row in files:  # the same foreground: mixed files are fg_<original stem>_bg_...
        stem = Path(row[0]).stem
        assert all(f.startswith(f"fg_{stem}_bg_") for f in row[1:])
    # the fixtures paint the same fg square in every variant; the fg mask npy marks it
    for r, row in enumerate(files):
        cls = next(p for p in (tmp_path / "data" / "in9" / "bg_challenge" / "test" / "fg_mask" / "val").iterdir()
                   if (p / f"{Path(row[0]).stem}.npy").exists())
        fg = np.load(cls / f"{Path(row[0]).stem}.npy").astype(bool)
        inner = fg & np.roll(fg, 1, 0) & np.roll(fg, -1, 0) & np.roll(fg, 1, 1) & np.roll(fg, -1, 1)
        bg = ~fg & ~np.roll(fg, 1, 0) & ~np.roll(fg, -1, 0) & ~np.roll(fg, 1, 1) & ~np.roll(fg, -1, 1)
        means = images[r][:, inner].mean(1)  # (4, 3): the fg colour in each variant
        np.testing.assert_allclose(means, means[:1].repeat(4, 0), atol=0.06)
        bgs = images[r][:, bg].mean(1)
        assert np.abs(bgs[3] - bgs[0]).max() > 0.05  # Mixed-Next: another class's background
    _, again = _build(figs.figure3, _ctx(tmp_path, (), "out2"))
    np.testing.assert_array_equal(again["images"], images)


def test_figure2_attacks_a_done_orig_run_when_there_is_one(tmp_path):
    from repro.papers.cfaug.sources import source_for
    from repro.models import build_model
    from repro.papers.cfaug.plans import ROWS, run_config, seeds
    ctx = _ctx(tmp_path, ("waterbirds",))
    _, untrained = _build(figs.figure2, ctx, dataset="waterbirds")
    cfg = run_config(ctx, "waterbirds", ROWS["waterbirds"][0], seeds(ctx)[0], source_for(ctx, "waterbirds"))
    record = RunStore(ctx.runs_dir).record(cfg)
    torch.manual_seed(7)
    record.path("best.pt").parent.mkdir(parents=True, exist_ok=True)
    torch.save(build_model(cfg.model, num_classes=2).state_dict(), record.path("best.pt"))
    record.path("done").write_text("")
    path, trained = _build(figs.figure2, ctx, dataset="waterbirds")
    assert json.loads(path.with_suffix(".json").read_text())["fgsm_model"].startswith(f"trained Orig run {record.key}")
    fgsm = trained["columns"].tolist().index("F FGSM")
    assert not np.array_equal(trained["images"][:, fgsm], untrained["images"][:, fgsm])
    np.testing.assert_array_equal(trained["images"][:, :fgsm], untrained["images"][:, :fgsm])
