"""X-ray emphysema data (actdiff spec §7): cohorts, the exact split, normalisation, the disc ROI, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from repro.papers.actdiff import data_xray as xray
from repro.data.image_sets import DatasetError

PER_POOL = 12


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return xray.write_fixtures(tmp_path_factory.mktemp("xray"), per_pool=PER_POOL)


@pytest.fixture(scope="module")
def prepared(root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared")
    xray.prepare_xray(root, out, 0.9)
    return out


def _synthetic_pools(size: int) -> xray.Pools:
    """Id pools in a non-sorted CSV order (no images)."""
    rng = np.random.RandomState(7)
    return {(s, lab): [f"s{s}l{lab}_{k:05d}" for k in rng.permutation(size)] for s, lab in xray.POOLS}


def test_cohort_rules_on_fixture_csvs(root):
    pools = xray.cohorts(root)
    nih = pd.read_csv(root / "NIH" / xray.NIH_CSV)
    pc = pd.read_csv(root / "PadChest" / xray.PC_CSV)
    emph = nih["Finding Labels"].str.contains("Emphysema")
    assert pools[(0, 1)] == nih.loc[emph, "Image Index"].tolist()  # CSV order, "|" lists included
    assert pools[(0, 0)] == nih.loc[nih["Finding Labels"] == "No Finding", "Image Index"].tolist()
    assert pools[(0, 1)] != sorted(pools[(0, 1)])
    dropped = nih.loc[nih["Finding Labels"].isin(["Atelectasis", "Effusion|Mass"]), "Image Index"]
    assert not set(dropped) & set(pools[(0, 0)] + pools[(0, 1)])
    pa = pc[pc["ViewPosition_DICOM"] == "['POSTEROANTERIOR']"]
    assert pools[(1, 1)] == pa.loc[pa["Labels"].str.contains("emphysema"), "ImageID"].tolist()
    assert pc.loc[pc["Labels"] == "['subcutaneous emphysema']", "ImageID"].item() in pools[(1, 1)]
    assert pools[(1, 0)] == pa.loc[pa["Labels"] == "['normal']", "ImageID"].tolist()
    non_pa = pc.loc[pc["ViewPosition_DICOM"] != "['POSTEROANTERIOR']", "ImageID"]  # AP, lateral, NaN
    assert len(non_pa) == 3 and not set(non_pa) & set(pools[(1, 0)] + pools[(1, 1)])
    assert {k: len(v) for k, v in pools.items()} == {k: PER_POOL for k in xray.POOLS}


def test_split_counts_match_the_paper_at_n_500():
    assert xray.split_counts(500, 0.9) == {"train": (450, 49, 49, 450), "valid": (24, 225, 225, 24),
                                           "test": (26, 226, 226, 26)}
    assert xray.split_counts(500, 0.5) == {"train": (250,) * 4, "valid": (125,) * 4, "test": (125,) * 4}


@pytest.mark.parametrize("ratio, sizes", [(0.9, (998, 498, 504)), (0.5, (1000, 500, 500))])
def test_split_n_500_sizes_order_and_disjointness(ratio, sizes):
    pools = _synthetic_pools(800)
    splits = xray.split(pools, ratio, n=500)
    assert tuple(len(splits[s]) for s in xray.SPLITS) == sizes
    counts = xray.split_counts(500, ratio)
    for name, items in splits.items():
        keys = [item[:2] for item in items]
        assert keys == [k for k, c in zip(xray.POOLS, counts[name]) for _ in range(c)]  # NIH-, NIH+, PC-, PC+
        assert all(i.startswith(f"s{s}l{lab}_") for s, lab, i in items)
    ids = [i for items in splits.values() for _, _, i in items]
    assert len(set(ids)) == len(ids) == 2000
    assert xray.split(pools, ratio, n=500) == splits  # fixed dataset seed
    assert xray.split(pools, ratio, seed=1, n=500) != splits
    test_nih_neg = [i for s, lab, i in splits["test"] if (s, lab) == (0, 0)]
    assert test_nih_neg == sorted(test_nih_neg)  # setdiff1d remainder


def test_split_follows_the_legacy_global_rng_stream():
    """Same draws as the code's np.random.seed(1234) twice, then choice(n), train, valid (pool order each)."""
    pools, n, ratio = _synthetic_pools(40), 20, 0.9
    counts = xray.split_counts(n, ratio)
    state = np.random.get_state()
    try:
        np.random.seed(1234)
        np.random.seed(1234)
        left = [np.random.choice(np.array(pools[k]), n, replace=False) for k in xray.POOLS]
        expected = {}
        for name in ("train", "valid"):
            expected[name] = [np.random.choice(p, c, replace=False) for p, c in zip(left, counts[name])]
            left = [np.setdiff1d(p, t) for p, t in zip(left, expected[name])]
        expected["test"] = left
    finally:
        np.random.set_state(state)
    got = xray.split(pools, ratio, n=n)
    for name in xray.SPLITS:
        assert [i for _, _, i in got[name]] == [str(i) for a in expected[name] for i in a]
    assert [len(got[s]) for s in xray.SPLITS] == [sum(counts[s]) for s in xray.SPLITS]


def test_small_n_balanced_and_pool_size_rules():
    pools = _synthetic_pools(30)
    splits = xray.split(pools, 0.5, n=20)
    assert [len(splits[s]) for s in xray.SPLITS] == [40, 20, 20]
    pools[(1, 1)] = pools[(1, 1)][:25]
    assert xray.pool_size(pools) == 25 and xray.pool_size(pools, cap=10) == 10
    with pytest.raises(DatasetError, match="PadChest label 1: 25"):
        xray.split(pools, 0.9, n=26)


def test_prepare_records_counts_maxvals_and_fingerprint(prepared):
    meta = json.loads((prepared / xray.SOURCE_JSON).read_text())
    assert meta["n"] == PER_POOL and "need n = 500" in meta["note"]
    assert meta["maxvals"] == {"NIH": [255], "PadChest": [65535]}
    assert meta["counts"]["train"] == {"NIH/0": 10, "NIH/1": 1, "PadChest/0": 1, "PadChest/1": 10}
    npz = np.load(prepared / xray.NPZ)
    assert npz["train_images"].shape == (22, 1, 128, 128) and npz["train_images"].dtype == np.float32
    assert npz["test_labels"].dtype == np.int64 and npz["test_site"].dtype == np.int64
    assert npz["valid_images"].min() >= -1024 and npz["valid_images"].max() <= 1024
    assert len(meta["fingerprint"]) == 64
    pools = xray.cohorts(Path(meta["data_root"]))
    assert meta["fingerprint"] != xray.split_fingerprint(xray.split(pools, 0.5, n=PER_POOL), 0.5)


def test_disc_mask_has_8245_pixels():
    disc = xray.disc_mask()
    assert disc.shape == (1, 128, 128) and int(disc.sum()) == 8245
    rows = torch.nonzero(disc[0].sum(1)).flatten()
    assert rows.min() == 13 and rows.max() == 115 and torch.equal(disc[0], disc[0].T)


@pytest.mark.parametrize("mode, dtype, top", [("L", np.uint8, 255), ("I;16", np.uint16, 65535),
                                              ("RGBA", np.uint8, 255)])
def test_normalisation_per_bit_depth(tmp_path, mode, dtype, top):
    x = np.zeros((128, 128), dtype)
    x[0, 0], x[0, 1] = top, top // 2
    image = Image.fromarray(np.stack([x, x * 0, x * 0, x * 0 + 255], -1) if mode == "RGBA" else x)
    assert image.mode == mode
    image.save(tmp_path / "a.png")
    y, maxval = xray.read_image(tmp_path / "a.png", xray.NIH)
    assert maxval == top and y.dtype == np.float32 and y.shape == (128, 128)
    assert y[0, 0] == 1024 and y[1, 1] == -1024  # channel 0 of RGBA
    np.testing.assert_allclose(y[0, 1], (2 * (top // 2) / top - 1) * 1024, rtol=1e-6)


def test_masked_splits_zero_outside_the_disc_only_where_named(prepared):
    plain = xray.build_xray(0, torch.device("cpu"), prepared)
    masked = xray.build_xray(0, torch.device("cpu"), prepared, masked_splits=("train", "test"))
    outside = xray.disc_mask() == 0
    assert torch.equal(masked.x, masked.evals["train"][0])  # "train" = the training set as evaluated
    for name, is_masked in (("train", True), ("valid", False), ("test", True)):
        x0, xm = plain.evals[name][0], masked.evals[name][0]
        assert (x0[:, outside] != 0).all()
        assert ((xm[:, outside] == 0).all() if is_masked else torch.equal(xm, x0))
        assert torch.equal(xm[:, ~outside], x0[:, ~outside])
    assert torch.equal(masked.mask, xray.disc_mask().expand(len(masked.y), 1, 128, 128))
    with pytest.raises(ValueError, match="unknown split"):
        xray.build_xray(0, torch.device("cpu"), prepared, masked_splits=("val",))


def test_limit_and_fingerprint_check(prepared):
    data = xray.build_xray(0, torch.device("cpu"), prepared, limit=6)
    assert [int(data.evals[s][1].sum()) for s in xray.SPLITS] == [3, 3, 3]
    assert all(len(data.evals[s][1]) == 6 for s in xray.SPLITS)
    with pytest.raises(DatasetError, match="fingerprint"):
        xray.build_xray(0, torch.device("cpu"), prepared, fingerprint="0" * 64)
    with pytest.raises(DatasetError, match="repro data prepare"):
        xray.build_xray(0, torch.device("cpu"), prepared.parent / "absent")


def test_wrong_size_image_and_missing_files_are_clear_errors(tmp_path):
    root = xray.write_fixtures(tmp_path / "root", per_pool=4)
    name = xray.cohorts(root)[(1, 0)][0]
    Image.fromarray(np.zeros((100, 128), np.uint16)).save(root / "PadChest" / xray.IMAGES / name)
    with pytest.raises(DatasetError, match=r"PadChest: .*128x100, not 128x128: pre-resize"):
        xray.prepare_xray(root, tmp_path / "out", 0.5)
    (root / "PadChest" / xray.IMAGES / name).write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=f"{name} is not a readable image"):
        xray.prepare_xray(root, tmp_path / "out", 0.5)
    (root / "PadChest" / xray.IMAGES / name).unlink()
    with pytest.raises(DatasetError, match="images listed in .* are missing"):
        xray.prepare_xray(root, tmp_path / "out", 0.5)
    (root / "NIH" / xray.NIH_CSV).unlink()
    with pytest.raises(DatasetError, match=r"NIH ChestX-ray14: .*Data_Entry_2017.csv is missing\. Expected layout"):
        xray.cohorts(root)
    assert not (tmp_path / "out" / xray.NPZ).exists()
