"""The authors' synth2 .npy files (switch A-20): used when `<data root>/synth2/` holds them, recorded in the run key
and the provenance; without them the generator, with the run keys of before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.data.image_sets import DatasetError
from repro.data.registry import build_dataset
from repro.engine import train_run
from repro.papers import get_paper
from repro.papers.actdiff.data_synth2_files import GENERATED, POOLS, load_pools
from repro.papers.actdiff.data_synthetic import generate_pool, load_split
from repro.papers.actdiff.plans import plan_grid, synthetic_run
from repro.papers.actdiff.report import synthetic_data
from tests.conftest import new_record

PER_CLASS = 16  # the smoke profile draws 16 of each class per split


def write_synth2(root: Path) -> Path:
    """A tiny synth2 folder in the official naming: per pool 16 one-cross then 16 two-cross images (float64
    28x28), drawn from the generator's pools and flipped upside down so they differ from what it gives."""
    folder = root / "synth2"
    folder.mkdir(parents=True)
    for p, pool in enumerate(POOLS):
        img, seg, _ = generate_pool(p)
        picks = [*range(PER_CLASS), *range(256, 256 + PER_CLASS)]
        for i, j in enumerate(picks):
            np.save(folder / f"{pool}_img_{i}.npy", img[j, ::-1].astype(np.float64))
            np.save(folder / f"{pool}_seg_{i}.npy", seg[j, ::-1].astype(np.float64))
    return folder


def _ctx(tmp_path: Path, data_root: Path | None, **switches: str):
    return get_paper("actdiff").context("smoke", None, "code", switches, tmp_path / "out", data_root,
                                        tmp_path / "runs")


def test_runs_read_the_files_and_record_them(tmp_path):
    folder = write_synth2(tmp_path / "data")
    ctx = _ctx(tmp_path, tmp_path / "data")
    runs = plan_grid(ctx)
    data = runs[0].config.data
    assert data["source"] == "files" and len(data["fingerprint"]) == 16
    assert all(r.config.data["fingerprint"] == data["fingerprint"] for r in runs)
    assert synthetic_data(ctx, runs) == (f"the authors' synth2 .npy files from {folder.resolve()} "
                                         f"(fingerprint {data['fingerprint']})")
    generated = synthetic_run(_ctx(tmp_path, tmp_path / "data", synth2_files="false"), "CNN", "Classify", 0).config
    assert runs[0].config.key != generated.key  # the files are in the run key

    cfg = runs[0].config
    cfg = cfg.replace(epochs=1, batch_size=16, model_args={**cfg.model_args, "nc": 4},
                      data={**cfg.data, "n_train": 16, "n_valid": 16, "n_test": 16})
    rec = new_record(tmp_path / "runs", cfg)
    train_run(rec, torch.device("cpu"))
    recorded = json.loads(rec.path("config.json").read_text())["data"]
    assert rec.path("done").exists() and recorded["fingerprint"] == data["fingerprint"]

    built = build_dataset("synthetic", cfg.data, 0, torch.device("cpu"), tmp_path / "runs" / "prepared")
    files = load_pools(tmp_path / "runs" / "prepared" / data["prepared"], data["fingerprint"])
    assert torch.equal(built.x, load_split("train", 16, files=files)["img"])
    assert not torch.equal(built.x, load_split("train", 16)["img"])


def test_without_the_files_the_generator_and_the_old_keys(tmp_path):
    before = synthetic_run(_ctx(tmp_path, None), "UNet", "Actdiff", 0).config
    for root in (tmp_path / "empty", None):
        ctx = _ctx(tmp_path, root)
        run = synthetic_run(ctx, "UNet", "Actdiff", 0)
        assert "source" not in run.config.data and run.config.key == before.key
        assert synthetic_data(ctx, [run]) == GENERATED
    write_synth2(tmp_path / "data")
    off = synthetic_run(_ctx(tmp_path, tmp_path / "data", synth2_files="false"), "UNet", "Actdiff", 0)
    assert off.config.key == before.key


def test_a_changed_file_changes_the_key_and_an_incomplete_folder_is_an_error(tmp_path):
    key = synthetic_run(_ctx(tmp_path, write_synth2(tmp_path / "a").parent), "CNN", "Classify", 0).config.key
    changed = write_synth2(tmp_path / "b")
    np.save(changed / "distractor2_img_3.npy", np.zeros((28, 28)))
    assert synthetic_run(_ctx(tmp_path, tmp_path / "b"), "CNN", "Classify", 0).config.key != key
    (write_synth2(tmp_path / "c") / "distractor3_seg_5.npy").unlink()
    with pytest.raises(DatasetError, match="incomplete set.*synth2_files=false"):
        synthetic_run(_ctx(tmp_path, tmp_path / "c"), "CNN", "Classify", 0)


def test_a_dry_run_plans_the_same_keys_and_writes_nothing(tmp_path):
    write_synth2(tmp_path / "data")
    paper = get_paper("actdiff")
    dry = paper.context("smoke", None, "code", {}, tmp_path / "out", tmp_path / "data", tmp_path / "dry", "imagenet",
                        "auto", True)
    planned = synthetic_run(dry, "CNN", "Classify", 0).config
    assert planned.data["source"] == "files" and not (tmp_path / "dry").exists()
    assert planned.key == synthetic_run(_ctx(tmp_path, tmp_path / "data"), "CNN", "Classify", 0).config.key
