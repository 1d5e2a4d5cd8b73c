"""actdiff MSD (spec §6): the NIfTI task reader, slice selection and cache on fixtures written in the official
layout, broken copies, the device-side augmentation, and Table 2 / Figures 4 and 8 at the smoke profile."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from repro.cli import app
from repro.data.image_sets import DatasetError
from repro.papers import get_paper
from repro.papers.actdiff import plans
from repro.papers.actdiff.data_msd import (TASKS, build_msd, prepare_msd, roi_mask, slice_labels, split_volumes)
from repro.papers.actdiff.msd_augment import CropFlip
from repro.papers.actdiff.msd_fixtures import (DEPTH, LONE_ORGAN_Z, SIDE, SUBJECTS, positive_slices, write_fixtures,
                                               write_task)
from repro.papers.actdiff.msd_sources import SMOKE_SLICES
from tests.conftest import plant_done

pytest.importorskip("nibabel")
runner = CliRunner()


@pytest.fixture(scope="module")
def msd_root(tmp_path_factory) -> Path:
    return write_fixtures(tmp_path_factory.mktemp("msd"))


@pytest.fixture(scope="module")
def liver(msd_root, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("prepared") / "liver"
    meta = prepare_msd("liver", msd_root / "MSD" / "Task03_Liver", {0: out}, SMOKE_SLICES["n"], SMOKE_SLICES["sizes"])
    return meta[0], out


def test_fixtures_are_in_the_official_layout(msd_root):
    import nibabel as nib

    for task in TASKS.values():
        folder = msd_root / "MSD" / task.folder
        meta = json.loads((folder / "dataset.json").read_text())
        assert meta["numTraining"] == SUBJECTS == len(meta["training"])
        entry = meta["training"][0]
        assert entry["image"].startswith("./imagesTr/") and entry["label"].startswith("./labelsTr/")
        assert nib.load(str(folder / entry["image"])).shape == (SIDE, SIDE, DEPTH)


def test_slice_labels_follow_the_sum_rule():
    # by hand: the organ's slices and the lone-tumour slice are positive; one organ voxel (sum 1) is not
    seg = np.zeros((4, 4, 5), np.uint8)
    seg[0, 0, 1] = 1
    seg[0, 0:2, 2] = 1
    seg[3, 3, 3] = 2
    assert slice_labels(seg).tolist() == [0, 0, 1, 1, 0]


def test_split_is_lexicographic_then_shuffled_30_30_40():
    names = [f"liver_{k}.nii.gz" for k in range(11)]
    split = split_volumes(names, 0)
    order = sorted(names)  # liver_0, liver_1, liver_10, liver_2, ...
    assert order[2] == "liver_10.nii.gz"
    np.random.RandomState(0).shuffle(order)
    assert split == {"train": order[:3], "valid": order[3:6], "test": order[6:]}


def test_prepare_counts_labels_order_and_fingerprint(liver, msd_root, tmp_path):
    meta, out = liver
    pos = positive_slices()
    assert meta["volumes"] == {"train": 1, "valid": 1, "test": 4}
    assert meta["slices"]["train"] == {"total": DEPTH, "positive": len(pos)}
    assert meta["slices"]["test"] == {"total": 4 * DEPTH, "positive": 4 * len(pos)}
    for split in ("train", "valid", "test"):
        items = meta["items"][split]
        labels = [lab for _, _, lab in items]
        assert labels == [1] * 4 + [0] * 4  # n/2 positives first
        assert all((z in pos) == bool(lab) for _, z, lab in items)
        assert {v for v, _, _ in items} <= set(meta["split_volumes"][split])
    npz = np.load(out / "slices.npz")
    assert npz["train_images"].shape == (8, 1, 31, 31) and npz["test_images"].shape == (8, 1, 28, 28)
    masks, labels = npz["train_masks"], npz["train_labels"]
    assert (masks[labels == 0] == 1).all()  # negatives: all-ones masks
    assert all((m != 1).any() for m in masks[labels == 1])  # the dilated organ leaves pixels outside
    assert npz["train_images"].min() < -200  # raw HU, no scaling (A-9 default)
    again = prepare_msd("liver", msd_root / "MSD" / "Task03_Liver", {0: tmp_path / "again"}, SMOKE_SLICES["n"],
                        SMOKE_SLICES["sizes"])[0]
    assert again["fingerprint"] == meta["fingerprint"]
    assert (np.load(tmp_path / "again" / "slices.npz")["train_images"] == npz["train_images"]).all()


def test_dilation_is_a_square_of_radius_4_sigma_at_native_resolution():
    seg = np.zeros((200, 200), np.uint8)
    seg[100, 100] = 1
    for blur, r in ((16.0, 64), (8.0, 32)):
        mask = roi_mask(seg, 1, blur)
        assert mask.sum() == (2 * r + 1) ** 2 and mask[100 - r, 100 + r] == 1 and mask[100 - r - 1, 100] == 0
    assert (roi_mask(seg, 0, 16.0) == 1).all()


def test_too_few_slices_is_a_clear_error(msd_root, tmp_path):
    with pytest.raises(DatasetError, match="fewer than the 8 per class"):
        prepare_msd("liver", msd_root / "MSD" / "Task03_Liver", {0: tmp_path}, {"train": 16, "valid": 8, "test": 8},
                    SMOKE_SLICES["sizes"])


def _broken(msd_root: Path, tmp_path: Path, how: str) -> Path:
    root = tmp_path / "broken"
    shutil.copytree(msd_root / "MSD" / "Task02_Heart", root / "MSD" / "Task02_Heart")
    task = root / "MSD" / "Task02_Heart"
    train = split_volumes([f"la_{k}.nii.gz" for k in range(SUBJECTS)], 0)["train"][0]
    if how == "missing labelsTr":
        shutil.rmtree(task / "labelsTr")
    elif how == "wrong shape":
        import nibabel as nib

        nib.save(nib.Nifti1Image(np.zeros((SIDE, SIDE // 2, DEPTH), np.uint8), np.eye(4)), str(task / "labelsTr" / train))
    elif how == "truncated gz":
        data = (task / "imagesTr" / train).read_bytes()
        (task / "imagesTr" / train).write_bytes(data[: len(data) // 2])
    elif how == "4-D volume":
        import nibabel as nib

        nib.save(nib.Nifti1Image(np.zeros((SIDE, SIDE, DEPTH, 2), np.uint8), np.eye(4)), str(task / "labelsTr" / train))
    elif how == "no dataset.json":
        (task / "dataset.json").unlink()
    return root


@pytest.mark.parametrize("how,needle", [("missing labelsTr", "listed in dataset.json are missing"),
                                        ("wrong shape", "differ in shape"),
                                        ("truncated gz", "not a readable NIfTI volume"),
                                        ("4-D volume", "not a 3-D"),
                                        ("no dataset.json", "dataset.json is missing")])
def test_broken_task_folder_is_a_clear_error(msd_root, tmp_path, how, needle):
    task = _broken(msd_root, tmp_path, how) / "MSD" / "Task02_Heart"
    with pytest.raises(DatasetError) as err:
        prepare_msd("cardiac", task, {0: tmp_path / "out"}, SMOKE_SLICES["n"], SMOKE_SLICES["sizes"])
    text = str(err.value)
    assert needle in text and "Task02_Heart" in text and "imagesTr/*.nii.gz" in text and "medicaldecathlon" in text


def test_broken_task_folder_through_the_cli_is_one_paragraph_exit_2(msd_root, tmp_path):
    root = _broken(msd_root, tmp_path, "missing labelsTr")
    res = runner.invoke(app, ["data", "prepare", "actdiff", "--data-root", str(root), "--runs-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and "labelsTr" in res.output and "Traceback" not in res.output
    assert "\n\n" not in res.output.strip()


def test_data_prepare_caches_present_tasks_and_data_check_lists_all_three(msd_root, tmp_path, monkeypatch):
    from repro.papers.actdiff import msd_sources

    monkeypatch.setattr(msd_sources, "MSD_SLICES", SMOKE_SLICES)  # the fixtures hold fewer than 128 slices
    root = tmp_path / "data"
    shutil.copytree(msd_root / "MSD" / "Task03_Liver", root / "MSD" / "Task03_Liver")
    res = runner.invoke(app, ["data", "prepare", "actdiff", "--data-root", str(root), "--runs-dir", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "prepared" / "actdiff" / "msd-liver-s0" / "slices.npz").is_file()
    assert "Cardiac skipped" in res.output and "Pancreas skipped" in res.output
    res = runner.invoke(app, ["data", "prepare", "actdiff", "--data-root", str(tmp_path / "empty"),
                              "--runs-dir", str(tmp_path / "r2")])
    assert res.exit_code == 2 and "no dataset to prepare" in res.output
    out = " ".join(runner.invoke(app, ["data", "check", "--data-root", str(msd_root)]).output.split())
    for task in TASKS.values():
        assert f"MSD/{task.folder}/{{dataset.json, imagesTr/*.nii.gz, labelsTr/*.nii.gz}}" in out
    from repro.data.check import check_all

    msd = {s.name: s for s in check_all(msd_root) if s.name.startswith("msd_")}
    assert set(msd) == {"msd_heart", "msd_liver", "msd_pancreas"}
    assert all(s.state == "subset" and s.counts == "training volumes 6 of 6 listed" for s in msd.values())


def test_build_intensity_switch_and_classify_masked(liver):
    _, out = liver
    raw = build_msd(0, torch.device("cpu"), out)
    scaled = build_msd(0, torch.device("cpu"), out, intensity="scaled")
    masked = build_msd(0, torch.device("cpu"), out, mask_train_inputs=True)
    assert torch.allclose(scaled.x, (raw.x + 1024) / 2048)
    assert torch.equal(masked.x, raw.x * raw.mask) and torch.equal(masked.evals["test"][0], raw.evals["test"][0])
    assert raw.x.shape[-1] == 31 and raw.evals["train"][0].shape[-1] == 28
    assert torch.equal(build_msd(0, torch.device("cpu"), out).evals["train"][0], raw.evals["train"][0])
    with pytest.raises(DatasetError, match="fingerprint"):
        build_msd(0, torch.device("cpu"), out, fingerprint="0" * 64)


def test_crop_flip_same_offsets_deterministic_and_per_member():
    x = torch.arange(4 * 11 * 11, dtype=torch.float32).reshape(4, 1, 11, 11)
    aug = CropFlip(8)
    a, m = aug(x, 2 * x, [torch.Generator().manual_seed(3)])
    assert a.shape == (4, 1, 8, 8) and torch.equal(m, 2 * a)  # the mask follows the image exactly
    again, _ = aug(x, 2 * x, [torch.Generator().manual_seed(3)])
    assert torch.equal(a, again)
    for i in range(4):  # each output is a window of its input, possibly flipped in either direction
        windows = [x[i, 0, r:r + 8, c:c + 8] for r in range(4) for c in range(4)]
        variants = [w.flip(d) if d else w for w in windows for d in (None, (0,), (1,), (0, 1))]
        assert any(torch.equal(a[i, 0], v) for v in variants)
    many, _ = aug(x.repeat(50, 1, 1, 1), x.repeat(50, 1, 1, 1), [torch.Generator().manual_seed(0)])
    assert len({tuple(t.flatten()[:2].tolist()) for t in many}) > 16  # offsets and flips vary per sample
    packed, _ = aug(x, x, [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)])
    alone = [aug(x[k:k + 2], x[k:k + 2], [torch.Generator().manual_seed(s)])[0] for k, s in ((0, 1), (2, 2))]
    assert torch.equal(packed, torch.cat(alone))  # a pack's rows use their own member's generator


def test_a_packed_msd_pair_trains_as_the_two_runs_alone(smoke_tmp):
    from repro.engine import train_pack
    from repro.runs.store import RunStore

    ctx, store = smoke_tmp
    runs = [plans.msd_run(ctx, "liver", "UNet", "Actdiff", s) for s in (0, 1)]
    alone = RunStore(ctx.runs_dir / "alone")
    shutil.copytree(ctx.runs_dir / "prepared", alone.root / "prepared")
    recs, solo = [store.record(r.config) for r in runs], [alone.record(r.config) for r in runs]
    for rs, rec in [(store, r) for r in recs] + [(alone, r) for r in solo]:
        rs.init(rec)
    train_pack(recs, torch.device("cpu"))
    for rec in solo:
        train_pack([rec], torch.device("cpu"))
    for a, b in zip(recs, solo):
        pa, pb = a.metrics()[0], b.metrics()[0]
        assert pa["loss"] == pytest.approx(pb["loss"], rel=1e-4) and pa["valid_accuracy"] == pb["valid_accuracy"]


@pytest.fixture
def smoke_tmp(tmp_path):
    from repro.runs.store import RunStore

    ctx = get_paper("actdiff").context("smoke", None, "code", {}, tmp_path / "out", None, tmp_path / "runs")
    plans.prepare_msd_tasks(ctx, ("liver",))
    return ctx, RunStore(ctx.runs_dir)


def test_msd_plan_rows_lrs_and_switches(smoke_tmp):
    ctx, _ = smoke_tmp
    runs = {(r.cell["model"], r.cell["method"]): r.config for r in plans.plan_msd(ctx)}
    assert len(runs) == 22 and {r.cell["task"] for r in plans.plan_msd(ctx)} == {"liver"}  # only liver prepared
    assert runs[("UNet", "Classify")].model == "unet"  # A-3 applies to the synthetic data only
    recon = runs[("Conv AE", "Reconstruct Masked")].method_args["objective"]["recon"]
    assert recon == {"weight": 1.0, "loss": "mse", "target": "shuffled"}
    assert runs[("UNet", "Actdiff")].model_args["normrecon"] is False and runs[("CNN", "Classify")].lr == 1e-4
    assert runs[("ResNet", "Classify Masked")].data["mask_train_inputs"] is True
    paper = get_paper("actdiff")
    scaled = paper.context("smoke", None, "code", {"A-9": "scaled", "A-11": "literal"}, ctx.out, None, ctx.runs_dir)
    cfg = plans.msd_run(scaled, "liver", "CNN", "Classify", 0).config
    assert cfg.data["intensity"] == "scaled" and cfg.lr == 1e-3


def test_table2_figure4_and_figure8_smoke_through_the_cli(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    ctx = get_paper("actdiff").context("smoke", None, "code", {}, out, None, runs)
    from repro.runs.store import RunStore

    store = RunStore(runs)
    for r in plans.plan_grid(ctx):  # the synthetic column trains in tests/test_cli.py; here only the MSD runs
        split = {"accuracy": 0.5, "rocauc": 0.5}
        plant_done(store, r.config, best={"test": split, "test_clean": split, "valid": split})
    args = ["--profile", "smoke", "--runs-dir", str(runs), "--out", str(out), "--device", "cpu"]
    res = runner.invoke(app, ["actdiff", "table2", *args])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "tables" / "actdiff" / "table2.csv")
    assert len(table) == 22
    for task in ("liver", "cardiac", "pancreas"):
        assert (table[f"{task}_n"] == 1).all() and table[f"{task}_mean"].between(0, 1).all()
        assert table[f"{task}_published"].notna().all()
    assert table.loc[0, "liver_published"] == 0.87  # CNN Classify
    prov = json.loads((out / "tables" / "actdiff" / "table2.json").read_text())
    assert all(v.startswith("SYNTHETIC") for v in prov["msd_data"].values()) and "SYNTHETIC" in prov["note"]
    for fig, tasks in (("figure4", ("liver", "cardiac")), ("figure8", ("pancreas",))):
        res = runner.invoke(app, ["actdiff", fig, *args])
        assert res.exit_code == 0, res.output
        assert "start" not in res.output  # Table 2's seed-0 runs are reused
        png = out / "figures" / "actdiff" / f"{fig}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        arrays = np.load(png.with_suffix(".npz"))
        for task in tasks:
            shown = arrays[f"{task}_ResNet_Actdiff_shown"]
            assert shown.shape == (28, 28) and (shown == 0).mean() >= 0.85  # top 10 % kept
            assert f"{task}_UNet_Reconstruct_Masked_output" in arrays and f"{task}_mask" in arrays
            assert f"{task}_UNet_Gradmask_nonhealthy" in arrays  # both saliency kinds saved
        meta = json.loads(png.with_suffix(".json").read_text())
        assert set(meta["slices"]) == set(tasks) and all(s["volume, z, label"][2] == 1 for s in meta["slices"].values())


def test_msd_figure_without_the_data_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["actdiff", "figure4", "--runs-dir", str(tmp_path / "runs"), "--data-root", str(tmp_path)])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "MSD/Task03_Liver/ not found" in text and "--profile smoke" in text


def test_paper_table2_without_msd_plans_the_synthetic_grid_and_says_so(tmp_path):
    ctx = get_paper("actdiff").context("paper", 1, "code", {}, tmp_path / "out", tmp_path, tmp_path / "runs")
    assert plans.prepare_msd_tasks(ctx, skip_missing=True) == ["liver", "cardiac", "pancreas"]
    assert {r.config.dataset for r in plans.plan_table2(ctx)} == {"synthetic"}
    from repro.papers.actdiff.report import msd_data

    assert all(v.startswith("not prepared") for v in msd_data(ctx, set()).values())


def test_fixture_slices_match_the_hand_count(tmp_path):
    import nibabel as nib

    folder = write_task(tmp_path, "cardiac", subjects=3)  # the Heart: two LA voxels mark the lone positive slice
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == ["la_0.nii.gz", "la_1.nii.gz", "la_2.nii.gz"]
    seg = np.asarray(nib.load(str(folder / "labelsTr" / "la_0.nii.gz")).dataobj)
    assert set(np.flatnonzero(slice_labels(seg))) == positive_slices() and slice_labels(seg)[LONE_ORGAN_Z] == 0
    with gzip.open(folder / "imagesTr" / "la_0.nii.gz") as f:  # gzip-compressed NIfTI-1, as the official files
        assert int.from_bytes(f.read(4), "little") == 348
