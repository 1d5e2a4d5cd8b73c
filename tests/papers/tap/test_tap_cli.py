"""`repro tap figure5` end to end on the shared MNIST files (smoke profile)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repro.cli import app
from tests.conftest import plan_states

SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"

runner = CliRunner()


@pytest.mark.skipif(not (SHARED_DATA / "MNIST").exists(), reason="../shared/data/MNIST not present")
def test_figure5_smoke_prepares_sweeps_and_plots(tmp_path):
    args = ["tap", "figure5", "--profile", "smoke", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "x"),
            "--device", "cpu", "--data-root", str(SHARED_DATA)]
    res = runner.invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    png = tmp_path / "x" / "figures" / "tap" / "figure5.png"
    prov = json.loads(png.with_suffix(".json").read_text())
    assert set(prov["lambdas"]) == {"RRR", "RBR", "TAP"} and all(v is not None for v in prov["lambdas"].values())
    assert [v["method"] for v in prov["values"]] == ["Base", "No XS", "RRR", "RBR", "TAP"]
    assert (tmp_path / "runs" / "prepared" / "tap" / "decoy_mnist" / "decoyed_mnist.npz").exists()
    again = runner.invoke(app, [*args, "--dry-run"])
    assert again.exit_code == 0 and set(plan_states(again.output)) == {"done"}, again.output  # nothing to train


def test_figure5_without_data_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["tap", "figure5", "--profile", "smoke", "--runs-dir", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "--data-root" in res.output and "Traceback" not in res.output


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_data_prepare_tap_builds_all_three_sets_with_identical_bytes(tmp_path, tiny_tap_root):
    trees = []
    for runs in ("a", "b"):
        res = runner.invoke(app, ["data", "prepare", "tap", "--data-root", str(tiny_tap_root),
                                  "--runs-dir", str(tmp_path / runs)])
        assert res.exit_code == 0, res.output
        prepared = tmp_path / runs / "prepared" / "tap"
        assert all((prepared / d / "meta.json").exists() for d in ("decoy_mnist", "pneu", "knee"))
        trees.append(_tree(prepared))
    assert trees[0] == trees[1]
    listing = " ".join(runner.invoke(app, ["list", "--runs-dir", str(tmp_path / "a")]).output.split())
    assert "table1 │ table │ - │ - │ no training runs" in listing and "figure5 │ figure │ 40 │ 0 │ to do" in listing
    assert {"text/test_cor/" in k for k in trees[0] if k.startswith("knee/")} == {True, False}


def test_data_prepare_tap_names_a_missing_class_folder(tmp_path, tiny_tap_root):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_tap_root, bad, symlinks=True)
    shutil.rmtree(bad / "chest_xray" / "train" / "PNEUMONIA")
    res = runner.invoke(app, ["data", "prepare", "tap", "--data-root", str(bad), "--runs-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "missing" in res.output and "PNEUMONIA" in " ".join(res.output.split())


def test_data_prepare_unknown_paper():
    res = runner.invoke(app, ["data", "prepare", "nonsense"])
    assert res.exit_code == 2 and "unknown paper" in res.output


def test_all_skips_an_artefact_whose_data_is_incomplete(tmp_path, tiny_tap_root):
    root = tmp_path / "data"
    shutil.copytree(tiny_tap_root, root, symlinks=True)
    for split in ("train", "test"):  # KNEE with its val split only, as in ../shared/data
        shutil.rmtree(root / "kneeKL224" / split)
    args = ["--profile", "smoke", "--data-root", str(root), "--runs-dir", str(tmp_path / "r"), "--dry-run"]
    res = runner.invoke(app, ["tap", "all", *args])
    assert res.exit_code == 0, res.output
    assert "skipping figure7" in res.output and "figure6" not in res.output.split("skipping")[-1].split(":")[0]
    alone = runner.invoke(app, ["tap", "figure7", *args])
    assert alone.exit_code == 2 and "without the train, test split" in " ".join(alone.output.split())
