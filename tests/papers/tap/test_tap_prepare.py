"""TAP data preparation (spec §2) on the real shared data; layout checks and the IDX reader on small fixtures."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.font_manager import FontProperties, findfont
from PIL import Image, ImageDraw, ImageFont

from repro.data.idx import read_idx
from repro.data.image_sets import DatasetError
from repro.papers.tap.data_prepare import prepare_tap, teacher_split
from repro.papers.tap.data_prepare_decoy import prepare_decoy_mnist
from repro.papers.tap.data_prepare_tagged import KNEE_TAGS, PNEU_TAGS, prepare_knee, prepare_pneu
from repro.papers.tap.data_staging import MODES, fingerprint

from conftest import copy_knee_splits

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/data not present")
CORNERS = {(0, 0), (0, 180), (202, 0), (202, 180)}
LIMIT = 12  # images per split in the PNEU / KNEE fixtures
TAP_LIMIT = 60  # images per split in the prepare_tap runs


def _grey(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _inputs(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root with its size and modification time, to show the inputs stay untouched."""
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return prepare_decoy_mnist(DATA / "MNIST", tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="module")
def pneu(tmp_path_factory):
    """PNEU without the JPEG round trip, so that tagged - clean is exactly the drawn text."""
    before = _inputs(DATA / "chest_xray")
    out = prepare_pneu(DATA / "chest_xray", tmp_path_factory.mktemp("pneu"), jpeg_quality=None, limit=LIMIT)
    assert _inputs(DATA / "chest_xray") == before
    return out


@pytest.fixture(scope="module")
def knee(tmp_path_factory):
    """KNEE on a train/val/test copy of a few shared val images per grade (the shared data has val only)."""
    return prepare_knee(copy_knee_splits(tmp_path_factory.mktemp("raw") / "kneeKL224", 3), tmp_path_factory.mktemp("knee"))


@pytest.fixture(scope="module")
def tap_runs(tmp_path_factory):
    """prepare_tap on the shared data twice, into two folders."""
    return [prepare_tap(DATA, tmp_path_factory.mktemp(f"tap{i}"), limit=TAP_LIMIT) for i in range(2)]


# ---------------------------------------------------------------- decoy MNIST


def _patches(npz, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Patch value and corner of each image, checking one 4x4 corner block per mask."""
    pos = npz[f"decoy_positions_{split}"]
    assert pos.dtype == np.uint8 and pos.sum(axis=(1, 2)).tolist() == [16] * len(pos)
    top, left = pos.any(axis=2).argmax(axis=1), pos.any(axis=1).argmax(axis=1)
    assert set(zip(top.tolist(), left.tolist())) <= {(0, 0), (0, 24), (24, 0), (24, 24)}
    box = np.zeros_like(pos)
    for i, (r, c) in enumerate(zip(top, left)):
        box[i, r:r + 4, c:c + 4] = 1
    assert (box == pos).all()
    corner_pixels = npz[f"{split}_images"][:, 0:28:24, 0:28:24]  # the pixels at (0|24, 0|24)
    return corner_pixels[np.arange(len(pos)), top // 24, left // 24], (top // 24) * 2 + left // 24


def _chi2(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's chi-square statistic of the contingency table of two categorical arrays."""
    table = pd.crosstab(a, b).to_numpy().astype(float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    return float(((table - expected) ** 2 / expected).sum())


@needs_data
def test_mnist_counts_and_seeded_split(mnist):
    meta = json.loads((mnist / "meta.json").read_text())
    assert meta["subset"] and "10%" in meta["note"] and "500 of 5,000" in meta["note"]
    assert meta["counts"] == {"train": 4500, "val": 500, "test": 10000, "test_cor": 10000}
    for source in meta["sources"].values():
        assert source["sha256"] == hashlib.sha256(Path(source["file"]).read_bytes()).hexdigest()
    clean = np.load(mnist / "original_mnist.npz")
    sub = read_idx(DATA / "MNIST/subset/train-5k-images-idx3-ubyte.gz")
    where = {img.tobytes(): i for i, img in enumerate(sub)}
    assert len(where) == len(sub)
    train = [where[x.tobytes()] for x in clean["train_images"]]
    val = [where[x.tobytes()] for x in clean["val_images"]]
    assert val == np.random.RandomState(0).choice(5000, 500, replace=False).tolist()  # D-21: seeded, draw order
    assert train == sorted(set(range(5000)) - set(val))
    labels = read_idx(DATA / "MNIST/subset/train-5k-labels-idx1-ubyte.gz")
    assert (clean["train_labels"] == labels[train]).all() and (clean["val_labels"] == labels[val]).all()
    assert (clean["test_images"] == read_idx(DATA / "MNIST/raw/t10k-images-idx3-ubyte.gz")).all()


@needs_data
def test_mnist_patches_encode_label_only_where_correlated(mnist):
    npz, clean = np.load(mnist / "decoyed_mnist.npz"), np.load(mnist / "original_mnist.npz")
    assert (npz["test_labels"] == npz["test_cor_labels"]).all()
    for mode, (source, permuted) in MODES.items():
        pos, x, labels = npz[f"decoy_positions_{mode}"], npz[f"{mode}_images"], npz[f"{mode}_labels"]
        assert (x[pos == 0] == clean[f"{source}_images"][pos == 0]).all()  # only the patch differs
        values, corner = _patches(npz, mode)
        assert (x[pos == 1].reshape(-1, 16) == values[:, None]).all()  # one value over the whole patch
        assert set(np.unique(values)) <= {255 - 25 * k for k in range(10)}
        match = (values == 255 - 25 * labels).mean()
        assert (0.06 < match < 0.14) if permuted else match == 1.0
        if mode in ("test", "test_cor"):
            assert np.bincount(corner, minlength=4).min() > 2300  # four corners, uniformly
            chi2 = _chi2(values, labels)  # 81 degrees of freedom: 99.9% quantile ~ 126
            assert chi2 < 126 if permuted else chi2 > 50000


@needs_data
def test_mnist_official_files_preferred_and_subset_switch(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(DATA / "MNIST/raw" / name, raw / name)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz"):
        prepare_decoy_mnist(tmp_path / "MNIST", tmp_path / "out", limit=10)
    shutil.copy(DATA / "MNIST/subset/train-5k-images-idx3-ubyte.gz", raw / "train-images-idx3-ubyte.gz")
    shutil.copy(DATA / "MNIST/subset/train-5k-labels-idx1-ubyte.gz", raw / "train-labels-idx1-ubyte.gz")
    out = prepare_decoy_mnist(tmp_path / "MNIST", tmp_path / "out", limit=10)
    meta = json.loads((out / "meta.json").read_text())
    assert not meta["subset"] and meta["sources"]["train_images"]["file"].endswith("raw/train-images-idx3-ubyte.gz")
    with pytest.raises(DatasetError, match="subset/train-5k-images-idx3-ubyte.gz"):
        prepare_decoy_mnist(tmp_path / "MNIST", tmp_path / "out", train_subset=True)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz"):
        prepare_decoy_mnist(DATA / "MNIST", tmp_path / "out", train_subset=False)


# ---------------------------------------------------------------- PNEU and KNEE


def _render(clean: np.ndarray, tag: str, top: int, left: int) -> np.ndarray:
    font = ImageFont.truetype(findfont(FontProperties(family="DejaVu Sans Mono", weight="bold")), 22)
    img = Image.fromarray(clean)
    ImageDraw.Draw(img).text((left, top), tag, fill=255, font=font)
    return np.asarray(img)


def _check_tagged(folder: Path, limit: int) -> None:
    """Rows aligned with the clean split, one 22x44 corner box per mask, and (no JPEG round trip) the tagged
    image = the clean image with the CSV's tag drawn at the mask's corner: changed inside the box only."""
    for mode, (source, _) in MODES.items():
        text, clean = (pd.read_csv(folder / kind / f"{s}.csv") for kind, s in (("text", mode), ("clean", source)))
        masks = np.load(folder / "text" / f"{mode}_masks.npy")
        assert len(text) == limit and masks.shape == (limit, 224, 224) and masks.dtype == np.uint8
        assert [Path(p).name for p in text.img_path] == [Path(p).name for p in clean.img_path]
        assert (text.label == clean.label).all()
        for path, clean_path, tag, mask in zip(text.img_path, clean.img_path, text.tag, masks):
            rows, cols = np.nonzero(mask)
            top, left = int(rows.min()), int(cols.min())
            assert (top, left) in CORNERS and mask.sum() == 968 and mask[top:top + 22, left:left + 44].all()
            before, after = _grey(folder / clean_path), _grey(folder / path)
            changed = before != after
            assert changed.any() and not changed[mask == 0].any() and (after >= before).all()
            assert (after == _render(before, tag, top, left)).all()


@needs_data
def test_pneu_tags_masks_and_clean_images(pneu):
    _check_tagged(pneu, LIMIT)
    for mode, (source, permuted) in MODES.items():
        text = pd.read_csv(pneu / "text" / f"{mode}.csv")
        assert (text.tag == [PNEU_TAGS[1 - y if permuted else y] for y in text.label]).all()  # val/test swapped
    for split in ("train", "val", "test"):
        clean = pd.read_csv(pneu / "clean" / f"{split}.csv")
        for path, label, source in zip(clean.img_path, clean.label, clean.source):
            img = Image.open(pneu / path)
            assert img.mode == "L" and img.size == (224, 224)
            assert (np.asarray(img) == np.asarray(Image.open(DATA / "chest_xray" / source).convert("L"))).all()
            assert source.split("/")[:2] == ["test" if split == "test" else "train", ("NORMAL", "PNEUMONIA")[label]]


@needs_data
def test_pneu_val_split_recorded(pneu, tap_runs):
    meta = json.loads((pneu / "meta.json").read_text())
    assert meta["split_sizes"] == {"train": 4695, "val": 134 + 387, "test": 624}  # int(0.1 n) per class
    run = tap_runs[0]["pneu"]
    train, val = (set(pd.read_csv(run / "clean" / f"{s}.csv").source) for s in ("train", "val"))
    assert len(val) == TAP_LIMIT and not train & val and all(s.startswith("train/") for s in val)
    assert not (DATA / "chest_xray" / "val").exists()


@needs_data
def test_pneu_jpeg_round_trip(tap_runs):
    """Default jpeg_quality=75: the clean image is re-encoded, and the tag's JPEG artefacts stay near the box."""
    run = tap_runs[0]["pneu"]
    clean = pd.read_csv(run / "clean" / "test.csv")
    assert any((_grey(run / p) != np.asarray(Image.open(DATA / "chest_xray" / s).convert("L"))).any()
               for p, s in zip(clean.img_path[:5], clean.source[:5]))
    text, masks = pd.read_csv(run / "text" / "test.csv"), np.load(run / "text" / "test_masks.npy")
    for p, q, mask in zip(clean.img_path[:10], text.img_path[:10], masks[:10]):
        diff = np.abs(_grey(run / p).astype(int) - _grey(run / q))
        assert diff[mask == 1].mean() > 10 and diff[mask == 0].mean() < 0.1


@needs_data
def test_knee_tags_masks_and_counts(knee):
    _check_tagged(knee, 15)
    for mode, (source, permuted) in MODES.items():
        text = pd.read_csv(knee / "text" / f"{mode}.csv")
        assert text.label.tolist() == [g for g in range(5) for _ in range(3)]  # sorted by grade
        if not permuted:
            assert (text.tag == [KNEE_TAGS[y] for y in text.label]).all()
        assert set(text.tag) <= set(KNEE_TAGS)


@needs_data
def test_knee_random_tags_on_shared_val(tap_runs):
    run = tap_runs[0]["knee"]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["split_sizes"] == {"val": 826} and meta["absent_splits"] == ["train", "test"]
    assert sorted(p.name for p in (run / "text").iterdir()) == ["val", "val.csv", "val_masks.npy"]
    text = pd.read_csv(run / "text" / "val.csv")
    assert len(text) == TAP_LIMIT and text.tag.nunique() == 5
    assert 0.05 < (text.tag == [KNEE_TAGS[y] for y in text.label]).mean() < 0.4  # 20% by chance


# ---------------------------------------------------------------- prepare_tap, determinism


@needs_data
def test_prepare_tap_is_deterministic(tap_runs):
    first, second = tap_runs
    assert set(first) == {"decoy_mnist", "pneu", "knee"}
    for name in first:
        meta = [json.loads((run[name] / "meta.json").read_text()) for run in tap_runs]
        assert meta[0] == meta[1] and meta[0]["fingerprint"] == fingerprint(first[name]) == fingerprint(second[name])
        assert meta[0]["seed"] == 0 and meta[0]["limit"] == TAP_LIMIT
    other = prepare_decoy_mnist(DATA / "MNIST", second["decoy_mnist"].parent / "seed1", seed=1, limit=TAP_LIMIT)
    assert fingerprint(other) != fingerprint(first["decoy_mnist"])


@needs_data
def test_prepare_tap_skips_absent_and_replaces_old_output(tmp_path, caplog):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "kneeKL224").symlink_to(DATA / "kneeKL224")
    with caplog.at_level(logging.INFO, logger="repro.papers.tap.data_prepare"):
        first = prepare_tap(tmp_path / "data", tmp_path / "out", limit=8)
    assert set(first) == {"knee"} and "decoy_mnist skipped" in caplog.text and "pneu skipped" in caplog.text
    again = prepare_tap(tmp_path / "data", tmp_path / "out", limit=5)["knee"]
    assert len(list((again / "text" / "val").iterdir())) == 5 and len(pd.read_csv(again / "clean" / "val.csv")) == 5
    assert sorted(p.name for p in again.iterdir()) == ["clean", "meta.json", "text"]  # no staging left


# ---------------------------------------------------------------- layout checks


def _layout(root: Path, folders: list[str], suffix: str) -> None:
    """One small grey image per folder, named after it (e.g. `val_2.png`)."""
    for folder in folders:
        (root / folder).mkdir(parents=True)
        Image.new("L", (224, 224), 40).save(root / folder / f"{folder.replace('/', '_')}{suffix}")


PNEU_FOLDERS = [f"{s}/{c}" for s in ("train", "test") for c in ("NORMAL", "PNEUMONIA")]
KNEE_FOLDERS = [f"val/{g}" for g in range(5)]


@pytest.mark.parametrize("folders, missing", [
    (PNEU_FOLDERS[2:], ["train"]),
    (PNEU_FOLDERS[:1] + PNEU_FOLDERS[2:], ["train/PNEUMONIA"]),
    ([], ["train", "test"]),
])
def test_pneu_layout_names_missing_piece(tmp_path, folders, missing):
    root = tmp_path / "chest_xray"
    root.mkdir()
    _layout(root, folders, ".jpeg")
    with pytest.raises(DatasetError) as e:
        prepare_pneu(root, tmp_path / "out")
    assert f"missing {', '.join(str(root / m) for m in missing)};" in str(e.value)
    assert "{train,test}/{NORMAL,PNEUMONIA}/*.jpeg" in str(e.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("folders, missing", [
    ([], "{train,val,test} (at least one split)"),
    (KNEE_FOLDERS[:4], "val/4"),
    (KNEE_FOLDERS + ["test/0"], "test/1, "),
])
def test_knee_layout_names_missing_piece(tmp_path, folders, missing):
    root = tmp_path / "kneeKL224"
    root.mkdir()
    _layout(root, folders, ".png")
    with pytest.raises(DatasetError) as e:
        prepare_knee(root, tmp_path / "out")
    assert f"{root}/{missing}" in str(e.value)
    assert f"expected {root}/{{train,val,test}}/{{0,1,2,3,4}}/*.png" in str(e.value)


def test_layout_empty_folder_unreadable_image_and_wrong_size(tmp_path):
    root = tmp_path / "kneeKL224"
    _layout(root, KNEE_FOLDERS, ".png")
    img = root / "val" / "2" / "val_2.png"
    img.unlink()
    with pytest.raises(DatasetError, match=re.escape(f"no .png images in {root}/val/2;")):
        prepare_knee(root, tmp_path / "out")
    img.write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=re.escape(f"unreadable image {img}")):
        prepare_knee(root, tmp_path / "out")
    Image.new("L", (100, 224)).save(img)
    with pytest.raises(DatasetError, match="expected 224x224"):
        prepare_knee(root, tmp_path / "out")
    assert not [p for p in (tmp_path / "out").rglob("*")]  # a failure leaves nothing behind
    with pytest.raises(DatasetError, match="is not a folder"):
        prepare_pneu(tmp_path / "nowhere", tmp_path / "out")


def test_pneu_pools_an_input_val_folder(tmp_path):
    """A Kaggle-style val/ (images moved out of train) goes back into the pool: 11 per class, val = int(0.1 * 11)."""
    root = tmp_path / "chest_xray"
    _layout(root, PNEU_FOLDERS + ["val/NORMAL", "val/PNEUMONIA"], ".jpeg")
    for c in ("NORMAL", "PNEUMONIA"):
        for k in range(9):
            shutil.copy(root / "train" / c / f"train_{c}.jpeg", root / "train" / c / f"{c}{k}.jpeg")
    out = prepare_pneu(root, tmp_path / "out")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["split_sizes"] == {"train": 20, "val": 2, "test": 2} and meta["counts"]["test_cor"] == 2
    sources = pd.concat([pd.read_csv(out / "clean" / f"{s}.csv") for s in ("train", "val")]).source
    assert sorted(sources) == sorted(p.relative_to(root).as_posix() for s in ("train", "val")
                                     for p in (root / s).rglob("*.jpeg"))


def test_pneu_truncated_jpeg_and_name_clash(tmp_path):
    root = tmp_path / "chest_xray"
    _layout(root, PNEU_FOLDERS, ".jpeg")
    bad = root / "test" / "NORMAL" / "test_NORMAL.jpeg"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(DatasetError, match=re.escape(f"unreadable image {bad}")):
        prepare_pneu(root, tmp_path / "out")
    shutil.copy(root / "test" / "PNEUMONIA" / "test_PNEUMONIA.jpeg", bad)
    shutil.copy(bad, root / "test" / "PNEUMONIA" / "test_NORMAL.png")
    with pytest.raises(DatasetError, match="test: file names clash once written as PNG: .*test_NORMAL.jpeg"):
        prepare_pneu(root, tmp_path / "out")


# ---------------------------------------------------------------- teacher split, IDX reader


def test_teacher_split():
    teacher, student = teacher_split(4710, 0.1, seed=3)
    assert teacher == random.Random(3).sample(range(4710), 471)  # pretrain.py --frac
    assert sorted(teacher + student) == list(range(4710)) and student == sorted(student)  # D-10: remainder
    assert teacher_split(4710, 0.01, 3, student_set="full") == (random.Random(3).sample(range(4710), 47),
                                                                list(range(4710)))
    with pytest.raises(ValueError, match="student_set"):
        teacher_split(10, 0.1, 0, student_set="rest")


def _idx(data: np.ndarray, code: int) -> bytes:
    return bytes([0, 0, code, data.ndim]) + b"".join(d.to_bytes(4, "big") for d in data.shape) + data.tobytes()


def test_read_idx_raw_gz_and_errors(tmp_path):
    a = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(_idx(a, 0x0C))
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx(a, 0x0C)))
    for name in ("a.idx", "a.gz"):
        out = read_idx(tmp_path / name)
        assert out.dtype == np.int32 and out.dtype.isnative and (out == a).all()
    good = _idx(np.zeros((5, 2), np.uint8), 0x08)
    for name, data, problem in [
        ("magic", b"\x08\x03" + good[2:], "bad magic number"),
        ("code", b"\0\0\x07\x02" + good[4:], "bad magic number"),
        ("short", b"\0\0", "truncated IDX file"),
        ("header", good[:6], "truncated IDX header"),
        ("body", good[:-1], "truncated IDX file"),
        ("trailing", good + b"\0", "trailing bytes"),
        ("gz", gzip.compress(good)[:-6], "cannot be read"),
    ]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=problem) as e:
            read_idx(tmp_path / name)
        assert str(tmp_path / name) in str(e.value)
