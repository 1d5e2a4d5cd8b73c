"""The file-backed MaskTune path end to end on a tiny CelebA in the Kaggle layout: ResNet-50 (random init),
masks written as JPEGs beside nothing of the user's, Table 1 with quoted and reproduced rows, Figure 3."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from repro.cli import app
from tests.data.test_celeba import write_celeba

pytest.importorskip("pytorch_grad_cam")
pytest.importorskip("timm")


def test_celeba_table1_and_figure3_smoke(tmp_path: Path):
    root = tmp_path / "data"
    images = write_celeba(root / "celeba")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in images.iterdir())
    common = ["--profile", "smoke", "--init", "random", "--data-root", str(root), "--runs-dir", str(tmp_path / "runs"),
              "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, ["masktune", "table1", *common])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "tables" / "masktune" / "table1.csv")
    ours = table[table["method"] == "MaskTune (ours)"].iloc[0]
    assert 0 <= ours["worst_group_mean"] <= ours["average_mean"] <= 100 and ours["worst_group_n"] == 1
    assert ours["worst_group"] == 78.0 and "ours beside it" in ours["source"]  # the published cell kept as printed
    assert (table["source"] == "quoted from the paper").sum() == 11
    assert table.iloc[-1]["method"] == "ERM (ours, best_erm)"
    prov = json.loads((tmp_path / "out" / "tables" / "masktune" / "table1.json").read_text())
    assert prov["init"] == "random" and prov["profile"] == "smoke"

    masked = sorted((tmp_path / "runs" / "masks").glob("*/images/*/*.jpg"))
    assert sorted(p.name for p in masked) == [f"{i:06d}.jpg" for i in range(1, 6)]  # the 5 training images only
    assert all(Image.open(p).format == "JPEG" and Image.open(p).size == (178, 218) for p in masked)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in images.iterdir()) == before  # originals untouched

    result = CliRunner().invoke(app, ["masktune", "figure3", *common])
    assert result.exit_code == 0, result.output
    assert "waterbirds skipped" in result.output
    arrays = dict(__import__("numpy").load(tmp_path / "out" / "figures" / "masktune" / "figure3.npz"))
    assert arrays["celeba_erm_overlay"].shape == (4, 224, 224, 3)  # one test image per group
