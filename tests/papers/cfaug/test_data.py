"""cfaug loaders on fixtures in the official layouts (specs/cfaug.md §3, §10 item 10, C-16)."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, DataLoader

from repro.papers.cfaug.data import (FG_MASK_RULES, SourceBatchSampler, collate, in9_fg_mask, in9_mask_and_box,
                                     item_boxes, load_cfaug, stratified_subset)
from repro.papers.cfaug.listings import EVALS
from repro.papers.cfaug.fixtures import CCT_IDS, write_fixtures
from repro.papers.cfaug.transforms import EvalTransform, box_mask, resize_bbox
from repro.data.image_sets import DatasetError
from repro.data.in9 import CLASSES

PER_CLASS = 4


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cfaug_data")
    for name in ("in9", "waterbirds", "cct"):
        write_fixtures(out, name, per_class=PER_CLASS, size=32, seed=0)
    return out


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_fixtures_are_deterministic(tmp_path):
    a = write_fixtures(tmp_path / "a", "cct", per_class=1, size=16, seed=3)
    b = write_fixtures(tmp_path / "b", "cct", per_class=1, size=16, seed=3)
    c = write_fixtures(tmp_path / "c", "cct", per_class=1, size=16, seed=4)
    assert _digest(a) == _digest(b) != _digest(c)


# --- IN-9 -----------------------------------------------------------------------------------------------------


def test_in9_fg_mask_zero_and_different_rule():
    original = np.full((4, 5, 3), 90, np.uint8)
    no_fg = original.copy()
    no_fg[1:3, 1:4] = 0
    original[1, 1] = (0, 0, 0)  # genuinely black fg pixel: a hole
    original[2, 3, 1] = 0  # one channel equals no_fg's 0: that channel does not qualify
    no_fg[0, 0] = original[0, 0] = 0  # black in both: background
    qualifies = in9_fg_mask(Image.fromarray(original), Image.fromarray(no_fg))
    want = np.zeros((4, 5, 3), bool)
    want[1:3, 1:4] = True
    want[1, 1] = False
    want[2, 3, 1] = False
    assert torch.equal(qualifies, torch.from_numpy(want))


def _spec_example(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """§3.1's example: a 6x6 object with one zero channel (blacked out in no_fg) plus one dark background pixel
    that no_fg turns to 0 in every channel."""
    original = np.full((size, size, 3), 90, np.uint8)
    original[40:46, 40:46] = (200, 150, 0)
    no_fg = original.copy()
    no_fg[40:46, 40:46] = 0
    original[2, 2], no_fg[2, 2] = (1, 1, 1), (0, 0, 0)
    return original, no_fg


def test_in9_mask_rules_differ_and_the_crop_bbox_takes_every_channel():
    original, no_fg = _spec_example()
    qualifies = in9_fg_mask(Image.fromarray(original), Image.fromarray(no_fg))
    code, box_code = in9_mask_and_box(qualifies, "code")
    every, box_every = in9_mask_and_box(qualifies, "all_channel")
    assert int(code.sum()) == 37 and bool(code[40:46, 40:46].all()) and bool(code[2, 2])
    assert int(every.sum()) == 1 and bool(every[2, 2])
    assert box_code.tolist() == box_every.tolist() == [[2, 2, 1, 1]]  # the dark pixel alone, under both rules
    none, no_box = in9_mask_and_box(qualifies[..., :2] & False, "code")
    assert not none.any() and no_box.shape == (0, 4)
    with pytest.raises(ValueError):
        in9_mask_and_box(qualifies, "any")


def test_in9_loader_applies_the_mask_rule_after_the_same_crop(tmp_path):
    root = write_fixtures(tmp_path, "in9", per_class=1, size=32, seed=0)
    train = root / "bg_challenge" / "train"
    name = next((train / "original" / "train" / CLASSES[1]).iterdir()).name
    original, no_fg = _spec_example()
    Image.fromarray(original).save(train / "original" / "train" / CLASSES[1] / name)
    Image.fromarray(no_fg).save(train / "no_fg" / "train" / CLASSES[1] / name)
    sets = {rule: load_cfaug("in9", root, size=56, fg_mask=rule).train for rule in FG_MASK_RULES}  # resize 64
    index = next(i for i, it in enumerate(sets["code"].items) if it.image.name == name and it.label == 1)
    sums = []
    for stream in range(12):
        for train_set in sets.values():
            train_set.set_stream(stream)
        code, every = sets["code"][index], sets["all_channel"][index]
        assert torch.equal(code["x"], every["x"])  # one crop, drawn from the every-channel bbox, under both rules
        sums.append((int(code["mask"].sum()), int(every["mask"].sum())))
        assert bool(code["has_bbox"]) and bool(every["has_bbox"]) == (sums[-1][1] == 1)
    assert (37, 1) in sums and all(c == 36 + e for c, e in sums)  # the object counts under the code's rule only
    with pytest.raises(ValueError):
        load_cfaug("in9", root, fg_mask="any")


def test_in9_counts_labels_and_splits(root):
    data = load_cfaug("in9", root, size=32)
    assert data.num_classes == 9 and list(data.evals) == list(EVALS["in9"])
    assert data.details["class_counts"]["train"] == [PER_CLASS] * 9
    assert all(data.details["class_counts"][k] == [PER_CLASS // 2] * 9 for k in EVALS["in9"])
    assert data.train.labels.tolist() == sorted(data.train.labels.tolist())  # class folders in index order
    assert data.details["train_with_mask"] == 9 * PER_CLASS - 1  # one image lacks its no_fg twin
    batch = collate([data.train[i] for i in range(len(data.train))])
    assert batch["x"].shape == (36, 3, 32, 32) and batch["y"].dtype == torch.int64
    assert batch["mask"].shape == (36, 1, 32, 32) and batch["has_bbox"].dtype == torch.bool
    assert "cagan" not in batch
    first = data.train.items[0]
    assert first.mask is None and not batch["has_bbox"][0] and batch["mask"][0].sum() == 0
    assert batch["has_bbox"][1:].all()
    assert set(batch["mask"].unique().tolist()) == {0.0, 1.0}


def test_in9_train_mask_matches_the_square(root):
    """At S = 28 (resize 32 = the fixture size) the mask is the no_fg square, cropped and flipped like x."""
    data = load_cfaug("in9", root, size=28)
    item = data.train.items[3]
    original = np.asarray(Image.open(item.image).convert("RGB"))
    square = torch.from_numpy((np.asarray(Image.open(item.mask).convert("RGB")) == 0).all(-1))
    sample = data.train[3]
    x = torch.from_numpy(original.copy()).permute(2, 0, 1).float() / 127.5 - 1
    views = {(i, j, f): v.flip(-1) if f else v for i in range(5) for j in range(5) for f in (False, True)
             for v in [x[:, i:i + 28, j:j + 28]]}
    hits = [k for k, v in views.items() if torch.allclose(v, sample["x"], atol=1e-6)]
    assert hits, "x is not a 28 px crop (optionally flipped) of the original"
    i, j, f = hits[0]
    want = square[i:i + 28, j:j + 28]
    assert torch.equal(sample["mask"][0] > 0, want.flip(-1) if f else want)


def test_in9_eval_masks_from_npy_and_mixed_next_stem(root):
    data = load_cfaug("in9", root, size=32, eval_masks=True)
    orig, nxt = data.evals["original"], data.evals["mixed_next"]
    for k in (0, 5):
        npy = np.load(orig.items[k].mask)
        assert torch.equal(orig[k]["mask"][0] > 0, torch.from_numpy(npy > 0))
        assert nxt.items[k].image.name.startswith("fg_") and nxt.items[k].mask == orig.items[k].mask
        assert torch.equal(nxt[k]["mask"], orig[k]["mask"])
    assert data.evals["val"][0]["mask"].sum() == 0  # no mask source: zeros, skipped by the AUPR
    assert "mask" not in load_cfaug("in9", root, size=32).evals["original"][0]


def test_in9_cagan_missing_file_gives_zeros(root):
    data = load_cfaug("in9", root, size=32, cagan=True)
    assert data.details["train_with_cagan"] == 9 * PER_CLASS - 1
    last = data.train[len(data.train) - 1]
    assert torch.equal(last["cagan"], torch.zeros(3, 32, 32))
    assert data.train[0]["cagan"].abs().sum() > 0


def test_in9_data_ratio(root):
    half = load_cfaug("in9", root, size=32, data_ratio=0.5)
    assert len(half.train) == 18 and half.extra is None
    assert [i.image for i in half.train.items] == [i.image for i in load_cfaug("in9", root, data_ratio=0.5).train.items]
    double = load_cfaug("in9", root, size=32, data_ratio=2)
    originals = {i.image.name for i in double.train.items}
    assert len(double.extra) == 9 and not {i.image.name for i in double.extra.items} & originals
    assert not any(double.extra[i]["has_bbox"] for i in range(3))
    sampler = SourceBatchSampler([len(double.train), len(double.extra)], 8, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 36 // 8 + 9 // 8
    assert all(max(b) < 36 or min(b) >= 36 for b in batches)
    loader = DataLoader(ConcatDataset([double.train, double.extra]), batch_sampler=sampler, collate_fn=collate)
    assert sum(len(b["y"]) for b in loader) == 8 * len(batches)


# --- Waterbirds -----------------------------------------------------------------------------------------------


def test_waterbirds_subsets_and_groups(root):
    data = load_cfaug("waterbirds", root, size=32, cagan=True)
    assert data.num_classes == 2 and list(data.evals) == ["val", "original", "flip"]
    g = data.details["group_counts"]
    assert list(g["train"].values()) == [PER_CLASS, 1, 1, PER_CLASS]
    assert g["original"]["waterbird on land"] == g["original"]["landbird on water"] == 0
    assert g["flip"]["landbird on land"] == g["flip"]["waterbird on water"] == 0
    assert data.details["counts"] == {"train": 10, "val": 8, "original": 4, "flip": 4}
    batch = collate([data.train[i] for i in range(len(data.train))])
    assert batch["has_bbox"].all() and batch["cagan"].shape == (10, 3, 32, 32)


def test_waterbirds_soft_segmentation_is_binarised_above_zero(root):
    data = load_cfaug("waterbirds", root, size=32, eval_masks=True)
    item = data.evals["val"].items[0]
    seg = Image.open(item.mask).convert("RGB")
    hard = Image.fromarray(((np.asarray(seg) == 255) * 255).astype(np.uint8))
    hard_mask = EvalTransform(32)(seg, hard).mask
    soft_mask = data.evals["val"][0]["mask"]
    assert bool((soft_mask >= hard_mask).all()) and soft_mask.sum() > hard_mask.sum()  # the faint ring counts


def test_waterbirds_missing_cagan_is_an_error(root, tmp_path):
    write_fixtures(tmp_path, "waterbirds", per_class=2, size=16)
    victim = next((tmp_path / "waterbird" / "cagan").rglob("*.jpg"))
    victim.unlink()
    load_cfaug("waterbirds", tmp_path, size=16)  # fine without cagan
    with pytest.raises(DatasetError, match=r"precomputed CF\(CAGAN\) infills") as err:
        load_cfaug("waterbirds", tmp_path, size=16, cagan=True)
    assert "waterbird/cagan" in str(err.value) and victim.name in str(err.value)


# --- CCT ------------------------------------------------------------------------------------------------------


def test_cct_groups_labels_and_empty_removed(root):
    data = load_cfaug("cct", root, size=32)
    assert data.num_classes == 15 and data.details["categories"] == sorted(CCT_IDS)
    eff = data.details["effective_sizes"]
    assert eff["train"]["empty_removed"] == 1 and eff["train"]["samples"] == 15 * PER_CLASS + 4
    assert eff["train"]["no_bbox"] == 1 and eff["cis_test"]["samples"] == 15 * (PER_CLASS // 2)
    notes = json.loads((root / "cct" / "eccv_18_annotation_files" / "train_annotations.json").read_text())
    labels_of: dict[str, set[int]] = {}
    for a in notes["annotations"]:
        if a["category_id"] != 30:
            labels_of.setdefault(a["image_id"], set()).add(sorted(CCT_IDS).index(a["category_id"]))
    assert [it.label for it in data.train.items if len(labels_of[it.image.stem]) == 2] == sorted(
        next(v for v in labels_of.values() if len(v) == 2))
    assert all(it.label in labels_of[it.image.stem] for it in data.train.items)
    assert set(data.train.labels.tolist()) == set(range(15))
    images = [it.image for it in data.train.items]
    assert len(images) - len(set(images)) == 1  # the two-species image yields two samples
    no_box = [k for k, it in enumerate(data.train.items) if not it.boxes]
    assert len(no_box) == 1 and not data.train[no_box[0]]["has_bbox"]
    assert data.details["train_with_mask"] == len(data.train) - 1


def test_cct_bbox_rescale_and_union(root):
    data = load_cfaug("cct", root, size=32)
    item = next(it for it in data.train.items if len(it.boxes) == 2)
    image = Image.open(item.image)
    assert item.json_size == (image.size[0] * 4, image.size[1] * 4)
    boxes = item_boxes(item, image.size)
    json_boxes = torch.tensor(item.boxes)
    assert torch.equal(boxes, resize_bbox(json_boxes, item.json_size, image.size))
    assert torch.equal(boxes[:, :2], torch.div(json_boxes[:, :2], 4, rounding_mode="floor").long())
    union = box_mask(boxes, image.size[1], image.size[0])
    assert union.sum() <= box_mask(boxes[:1], image.size[1], image.size[0]).sum() + boxes[1, 2] * boxes[1, 3]
    sample = data.train[data.train.items.index(item)]
    assert sample["has_bbox"] and sample["mask"].sum() > 0


def test_cct_eval_masks_are_box_unions(root):
    data = load_cfaug("cct", root, size=32, eval_masks=True)
    ev = data.evals["trans_test"]
    item, sample = ev.items[0], ev[0]
    image = Image.open(item.image)
    want = box_mask(resize_bbox(item_boxes(item, image.size), image.size, (32, 32)), 32, 32)
    assert torch.equal(sample["mask"], want) and want.sum() > 0


# --- limits, determinism, workers -----------------------------------------------------------------------------


def test_stratified_subset_is_proportional_and_seeded():
    strata = np.repeat([0, 1, 2], [60, 30, 10])
    a = stratified_subset(strata, 20, seed=1)
    assert np.bincount(strata[a]).tolist() == [12, 6, 2] and np.all(np.diff(a) > 0)
    assert np.array_equal(a, stratified_subset(strata, 20, seed=1))
    assert not np.array_equal(a, stratified_subset(strata, 20, seed=2))
    assert np.array_equal(stratified_subset(strata, 500, seed=1), np.arange(100))


def test_limits_apply_per_split(root):
    data = load_cfaug("in9", root, size=32, limits={"train": 18, "mixed_rand": 9}, seed=5)
    assert data.details["class_counts"]["train"] == [2] * 9
    assert data.details["class_counts"]["mixed_rand"] == [1] * 9 and len(data.evals["original"]) == 18
    again = load_cfaug("in9", root, size=32, limits={"train": 18, "mixed_rand": 9}, seed=5)
    assert [i.image for i in again.train.items] == [i.image for i in data.train.items]
    wb = load_cfaug("waterbirds", root, size=32, limits={"train": 5, "flip": 2})
    assert sum(wb.details["group_counts"]["train"].values()) == 5 and len(wb.evals["flip"]) == 2
    assert set(wb.details["group_counts"]["flip"].values()) == {0, 1}
    with pytest.raises(ValueError, match="unknown split"):
        load_cfaug("in9", root, limits={"test": 3})


def test_train_stream_is_deterministic_and_worker_independent(root):
    data = load_cfaug("in9", root, size=24)
    data.train.set_stream(11)
    assert torch.equal(data.train[4]["x"], data.train[4]["x"])
    drawn = {data.train[4]["x"].sum().item()}
    for stream in range(12, 20):
        data.train.set_stream(stream)
        drawn.add(data.train[4]["x"].sum().item())
    assert len(drawn) > 1
    data.train.set_stream(11)
    pickle.loads(pickle.dumps(data.train))
    serial = [b["x"] for b in DataLoader(data.train, batch_size=8, collate_fn=collate)]
    workers = [b["x"] for b in DataLoader(data.train, batch_size=8, collate_fn=collate, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(serial, workers))


# --- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,folder", [("in9", "bg_challenge"), ("waterbirds", "waterbird"), ("cct", "cct")])
def test_missing_data_is_a_source_error(tmp_path, name, folder):
    with pytest.raises(DatasetError) as err:
        load_cfaug(name, tmp_path)
    message = str(err.value)
    assert str(tmp_path / folder) in message and "Expected layout" in message and "To obtain it" in message


def test_missing_class_folder_names_it(tmp_path):
    write_fixtures(tmp_path, "in9", per_class=1, size=16)
    gone = tmp_path / "bg_challenge" / "test" / "mixed_next" / "val" / CLASSES[4]
    for f in gone.iterdir():
        f.unlink()
    gone.rmdir()
    with pytest.raises(DatasetError, match="folder"):
        load_cfaug("in9", tmp_path, size=16)
    with pytest.raises(DatasetError) as err:
        load_cfaug("in9", tmp_path, size=16)
    assert str(gone) in str(err.value)


def test_corrupt_image_is_a_source_error_naming_the_file(tmp_path):
    write_fixtures(tmp_path, "waterbirds", per_class=1, size=16)
    data = load_cfaug("waterbirds", tmp_path, size=16)
    bad = data.train.items[0].image
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError) as err:
        data.train[0]
    assert str(bad) in str(err.value) and "Waterbirds" in str(err.value)


def test_corrupt_json_and_absent_infills_are_source_errors(tmp_path):
    write_fixtures(tmp_path, "cct", per_class=1, size=16)
    for f in (tmp_path / "cct" / "cagan").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"precomputed CF\(CAGAN\) infills"):
        load_cfaug("cct", tmp_path, size=16, cagan=True)
    notes = tmp_path / "cct" / "eccv_18_annotation_files" / "cis_test_annotations.json"
    notes.write_text("{not json")
    with pytest.raises(DatasetError) as err:
        load_cfaug("cct", tmp_path, size=16)
    assert str(notes) in str(err.value)
