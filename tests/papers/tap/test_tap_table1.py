"""TAP Table 1: `repro tap table1` end to end (smoke), and the ratios / published columns of the table."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from repro.cli import app
from repro.methods import build_objective
from repro.papers.tap import report_table1 as t1
from repro.report.tables import read_published

SWITCHES = {"tap_norm": "l1", "tap_downscale": "direct", "rbr_influence": "full", "rrr_output": "logits"}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # 2 threads on a shared 2-core machine spin-wait badly


def test_cli_smoke_writes_twelve_rows_with_published_columns(tmp_path):
    res = CliRunner().invoke(app, ["tap", "table1", "--profile", "smoke", "--out", str(tmp_path / "x"),
                                   "--runs-dir", str(tmp_path / "runs"), "--device", "cpu"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    path = tmp_path / "x" / "tables" / "tap" / "table1.csv"
    table = pd.read_csv(path, dtype={"paper_it_s": str, "paper_mem_gb": str})
    assert len(table) == 12 and set(table["mode"]) == {"device"}
    assert list(zip(table["arch"], table["method"]))[:4] == [("vgg16", m) for m in t1.METHODS]
    assert (table["it_s"] > 0).all() and table["mem_reserved_gb"].isna().all()  # no memory figure on CPU
    assert (table.loc[table["method"] == "No XS", "ratio_it_s_vs_noxs"] == 1).all()
    pub = read_published("tap", "table1").set_index("loss")
    for _, row in table.iterrows():
        assert row["paper_it_s"] == pub.loc[row["method"], f"{row['arch']}_it_s"]
    assert table.set_index(["arch", "method"]).loc[("densenet121", "RBR"), "paper_mem_gb"] == "OOM"
    prov = json.loads(path.with_suffix(".json").read_text())
    assert prov["profile"] == "smoke" and prov["model_init"] == "random" and prov["device"].startswith("cpu")
    assert "synthetic" in prov["pixels"] and "H100" in prov["anchors"]


def _row(arch, method, mode, it_s, mem):
    return {"arch": arch, "method": method, "batch": 16, "image_size": 224, "mode": mode, "it_s": it_s,
            "it_s_mean": it_s, "mem_reserved_gb": mem, "mem_allocated_gb": mem, "oom_10gb": mem > 10,
            "oom": False, "steps": 100}


def test_assemble_ratios_per_arch_and_mode_and_published_ratios():
    rows = [_row("resnet18", "No XS", "device", 100.0, 2.0), _row("resnet18", "RRR", "device", 25.0, 3.0),
            _row("resnet18", "No XS", "loader", 50.0, 2.5), _row("resnet18", "RRR", "loader", 20.0, 5.0),
            _row("densenet121", "No XS", "device", 20.0, 4.0), _row("densenet121", "RBR", "device", 2.0, 12.0)]
    t = t1.assemble(rows).set_index(["arch", "method", "mode"])
    assert t.loc[("resnet18", "RRR", "device"), "ratio_it_s_vs_noxs"] == pytest.approx(0.25)
    assert t.loc[("resnet18", "RRR", "loader"), "ratio_it_s_vs_noxs"] == pytest.approx(0.4)
    assert t.loc[("resnet18", "RRR", "loader"), "ratio_mem_vs_noxs"] == pytest.approx(2.0)
    assert t.loc[("resnet18", "RRR", "device"), "paper_ratio_it_s_vs_noxs"] == f"{12.5 / 38.5:.3f}"
    assert t.loc[("resnet18", "RRR", "device"), "authors_code_h100_it_s"] == pytest.approx(28.0)
    assert t.loc[("resnet18", "RRR", "device"), "authors_code_h100_ratio_it_s_vs_noxs"] == pytest.approx(28.0 / 107.5)
    rbr = t.loc[("densenet121", "RBR", "device")]
    assert rbr["paper_it_s"] == rbr["paper_ratio_it_s_vs_noxs"] == rbr["paper_ratio_mem_vs_noxs"] == "OOM"
    assert bool(rbr["oom_10gb"]) and "steps" not in t


def test_objective_specs_follow_the_switches_and_build():
    assert t1.objective_spec("No XS", SWITCHES) == {}
    assert t1.objective_spec("TAP", SWITCHES) == {"tap": {"weight": 1.0, "norm": "l1", "downscale": "direct"}}
    assert t1.objective_spec("RBR", SWITCHES) == {"rbr": {"weight": 1.0, "influence": "full"}}
    assert t1.objective_spec("RRR", SWITCHES) == {"rrr": {"weight": 1.0, "output": "logits"}}
    for method in t1.METHODS:
        objective = build_objective(t1.objective_spec(method, SWITCHES))
        assert len(objective.penalties) == (method != "No XS")


def test_authors_h100_anchors_cover_every_cell():
    h100 = t1.authors_h100()
    assert len(h100) == 12 and set(h100["arch"]) == set(t1.ARCHS) and set(h100["method"]) == set(t1.METHODS)
    assert h100.set_index(["arch", "method"]).loc[("vgg16", "TAP"), "it_s"] == pytest.approx(50.6)


def test_text_claims_compare_tap_with_rrr_and_rbr_per_arch_and_mode():
    rows = [_row("densenet121", m, "device", it, mem) for m, it, mem in
            (("No XS", 20.0, 4.0), ("RRR", 5.0, 9.0), ("RBR", 2.0, 12.0), ("TAP", 19.0, 4.5))]
    claims = t1.text_claims(t1.assemble(rows)).set_index(["quantity", "versus"])
    time, mem = "tap_training_time_vs_rrr_rbr", "tap_memory_vs_rrr_rbr"
    assert claims.loc[(time, "RRR"), "ours"] == pytest.approx(100 * 5.0 / 19.0)  # % of RRR's time per step
    assert claims.loc[(mem, "RBR"), "ours"] == pytest.approx(4.5 / 12.0)
    assert claims.loc[(time, "RRR"), "paper_table1"] == pytest.approx(100 * 3.0 / 12.0)  # printed 3.0 / 12.0 it/s
    assert claims.loc[(mem, "RBR"), "paper_table1"] == "OOM"  # DenseNet-121 + RBR did not fit on 10 GB
    assert claims.loc[(time, "RRR"), "published"] == "25" and claims.loc[(mem, "RRR"), "published"] == "0.5"


def test_rbr_rows_carry_the_skipped_eval_forward_note():
    rows = [_row("densenet121", m, "device", it, mem) for m, it, mem in
            (("No XS", 20.0, 4.0), ("RRR", 5.0, 9.0), ("RBR", 2.0, 12.0), ("TAP", 19.0, 4.5))]
    table = t1.assemble(rows)
    assert table.set_index("method")["note"].to_dict() == {"No XS": "", "RRR": "", "RBR": t1.RBR_NOTE, "TAP": ""}
    claims = t1.text_claims(table)
    assert set(claims.loc[claims["versus"] == "RBR", "note"]) == {t1.RBR_NOTE}
    assert set(claims.loc[claims["versus"] == "RRR", "note"]) == {""}
