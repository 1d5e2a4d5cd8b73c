"""The PNEU / KNEE loader on tiny preparations of the shared data (spec §2.2-2.4)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from repro.data.registry import build_dataset
from repro.papers.tap.data_tagged_xray import STATS
from repro.papers.tap.data_prepare_tagged import prepare_knee, prepare_pneu

from conftest import copy_knee_splits

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason="../shared/data not present")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """<runs>/prepared with tap/pneu (12 images per split, no JPEG round trip) and tap/knee (a train/val/test
    copy of a few shared val images per grade: the shared KNEE has val only)."""
    root = tmp_path_factory.mktemp("runs") / "prepared"
    prepare_pneu(DATA / "chest_xray", root / "tap" / "pneu", jpeg_quality=None, limit=12)
    prepare_knee(copy_knee_splits(tmp_path_factory.mktemp("raw") / "kneeKL224", 2), root / "tap" / "knee")
    return root


def load(prepared: Path, dataset: str = "pneu", **args):
    return build_dataset(dataset, {"prepared": f"tap/{dataset}", **args}, 0, CPU, prepared)


def test_masks_are_the_tag_boxes_and_the_tag_lies_inside(prepared):
    tagged, clean = load(prepared), load(prepared, variant="clean")
    assert tagged.x.dtype == torch.uint8 and tagged.x.shape == (len(tagged.y), 1, 224, 224)
    assert tagged.mask.dtype == torch.bool and tagged.mask.shape == tagged.x.shape
    for m in tagged.mask[:, 0]:
        rows, cols = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
        assert (len(rows), len(cols), int(m.sum())) == (22, 44, 968)  # a full 22x44 box ...
        assert rows[0].item() in (0, 202) and cols[0].item() in (0, 180)  # ... in a corner
    drawn = tagged.x != clean.x  # same rows in both variants: the drawn text is the only difference
    assert drawn.any() and not (drawn & ~tagged.mask).any()
    assert torch.equal(tagged.y, clean.y)


def test_clean_variant_has_no_mask_and_clean_validation(prepared):
    clean, tagged = load(prepared, variant="clean"), load(prepared)
    assert not clean.mask.any()
    val = pd.read_csv(prepared / "tap" / "pneu" / "clean" / "val.csv")
    assert clean.evals["valid"][1].tolist() == val["label"].tolist()
    assert not torch.equal(clean.evals["valid"][0], tagged.evals["valid"][0])  # permuted-tag val for contaminated
    assert set(tagged.evals) == {"valid", "test", "test_cor", "test_clean"}
    assert torch.equal(tagged.evals["test_clean"][0], clean.evals["test_clean"][0])


def test_transform_replicates_and_normalises_with_the_dataset_stats(prepared):
    for dataset in ("pneu", "knee"):
        d = load(prepared, dataset)
        mean, std = STATS[dataset]
        out = d.batch(d.x[:2])
        assert out.shape == (2, 3, 224, 224) and out.dtype == torch.float32
        assert torch.equal(out[:, 0], out[:, 2])
        assert torch.allclose(out[:, :1], (d.x[:2].float() / 255 - mean) / std)
    assert int(load(prepared, "knee").y.max()) == 4


def test_downscaled_masks_stay_boxes_over_the_downscaled_tag(prepared):
    small, clean = load(prepared, image_size=32), load(prepared, variant="clean", image_size=32)
    assert small.x.shape[-2:] == (32, 32) and all(e[0].shape[-2:] == (32, 32) for e in small.evals.values())
    for m in small.mask[:, 0]:
        rows, cols = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
        assert int(m.sum()) == len(rows) * len(cols) > 0  # still a filled rectangle
        assert rows.diff().eq(1).all() and cols.diff().eq(1).all()
    assert not ((small.x != clean.x) & ~small.mask).any()


def test_teacher_and_student_rows(prepared):
    full = load(prepared, variant="clean")
    rows = {"frac": 0.25, "seed": 3}
    teacher = load(prepared, variant="clean", train_rows={"role": "teacher", **rows})
    student = load(prepared, train_rows={"role": "student", **rows})
    assert len(teacher.y) == int(0.25 * len(full.y)) and len(teacher.y) + len(student.y) == len(full.y)
    images = {bytes(x.numpy()) for x in full.x}
    assert {bytes(x.numpy()) for x in teacher.x} <= images
    tagged = load(prepared)
    idx = [i for i in range(len(full.y)) if not any(torch.equal(full.x[i], t) for t in teacher.x)]
    assert torch.equal(student.x, tagged.x[idx])  # the remainder, in order, tagged
    everyone = load(prepared, train_rows={"role": "student", "student_set": "full", **rows})
    assert torch.equal(everyone.x, tagged.x)


def test_limits_draw_fixed_rows_across_grades(prepared):
    a, b = load(prepared, "knee", train_limit=4, eval_limit=5), load(prepared, "knee", train_limit=4, eval_limit=5)
    assert len(a.y) == 4 and all(len(e[1]) == 5 for e in a.evals.values())
    assert torch.equal(a.x, b.x) and torch.equal(a.evals["test"][0], b.evals["test"][0])
    assert len(set(a.evals["test"][1].tolist())) > 1  # not the first rows (sorted by grade)


def test_missing_preparation_names_the_prepare_command(prepared, tmp_path):
    with pytest.raises(FileNotFoundError, match="repro data prepare tap --data-root"):
        build_dataset("pneu", {"prepared": "tap/pneu"}, 0, CPU, tmp_path / "prepared")
    (tmp_path / "prepared" / "tap").mkdir(parents=True)
    shutil.copytree(prepared / "tap" / "pneu", tmp_path / "prepared" / "tap" / "pneu")
    (tmp_path / "prepared" / "tap" / "pneu" / "text" / "test_cor.csv").unlink()
    with pytest.raises(FileNotFoundError, match="test_cor.csv"):
        build_dataset("pneu", {"prepared": "tap/pneu"}, 0, CPU, tmp_path / "prepared")
