"""cfaug runs on synthetic data in the official layouts (smoke sizes): records, determinism, resume, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from repro.engine import train_run
from repro.papers import get_paper
from repro.papers.cfaug.plans import ROWS, run_config
from repro.runs.store import RunStore
from tests.conftest import Stop, new_record, plan_states, stop_after_epoch

CPU = torch.device("cpu")


def _ctx(tmp: Path, name: str = "runs"):
    paper = get_paper("cfaug")
    ctx = paper.context("smoke", None, "code", {}, tmp / "out", None, tmp / name)
    paper.prepare(ctx)  # synthetic data for the three datasets, their sources recorded
    return ctx


def _record(ctx, dataset: str, method: str, epochs: int = 1):
    from repro.papers.cfaug.sources import source_for

    row = next(r for r in ROWS[dataset] if r.method == method)
    return new_record(ctx.runs_dir, run_config(ctx, dataset, row, 5, source_for(ctx, dataset)).replace(epochs=epochs))


def _metrics(rec) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in rec.path("metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("dataset,method", [("in9", "CF(CAGAN)+F(Shuffle)+Sal"), ("waterbirds", "F(FGSM)"),
                                            ("cct", "CF(Tile)+F(Shuffle)")])
def test_a_run_records_every_set_at_its_best_epoch(tmp_path, dataset, method):
    rec = _record(_ctx(tmp_path), dataset, method)
    res = train_run(rec, CPU, profile="smoke")
    sets = {"in9": {"val", "original", "mixed_same", "mixed_rand", "mixed_next"},
            "waterbirds": {"val", "original", "flip"}, "cct": {"val", "cis_test", "trans_test"}}[dataset]
    assert set(res["best"]) == sets and res["best_epoch"] == 0 and rec.path("done").exists()
    metric = "auc" if dataset == "cct" else "accuracy"
    assert all(0 <= res["best"][s][metric] <= 100 for s in sets if res["best"][s][metric] == res["best"][s][metric])
    record = _metrics(rec)[0]
    assert {f"{s}_{k}": v for s, d in res["best"].items() for k, v in d.items()}.items() <= record.items()
    assert record["loss"] > 0 and res["final"] == res["best"]  # one epoch: selected and final
    preds = torch.load(rec.path("predictions.pt"), weights_only=True)
    assert set(preds) == sets and preds["val"]["logits"].shape[1] == rec.config.model_args["num_classes"]


def test_same_config_gives_the_same_result_and_resume_is_exact(tmp_path):
    """Interrupted after epoch 1 and relaunched, a 2-epoch run ends exactly where an uninterrupted one does; so
    does the same config in a second runs folder."""
    first = _record(_ctx(tmp_path, "a"), "waterbirds", "CF(Random)", epochs=2)
    train_run(first, CPU, profile="smoke")
    second = _record(_ctx(tmp_path, "b"), "waterbirds", "CF(Random)", epochs=2)
    with pytest.raises(Stop):
        train_run(second, CPU, stop_after_epoch(1), checkpoint_seconds=0, profile="smoke")
    assert second.state() == "failed" and second.path("checkpoint.pt").exists() and not second.path("done").exists()
    train_run(second, CPU, profile="smoke")
    assert _metrics(first) == [{**m, "key": first.key} for m in _metrics(second)]
    a, b = (torch.load(r.path("best.pt"), weights_only=True) for r in (first, second))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_methods_change_training(tmp_path):
    ctx = _ctx(tmp_path)
    losses = {}
    for method in ("Orig", "CF(Grey)", "Sal"):
        rec = _record(ctx, "in9", method)
        train_run(rec, CPU, profile="smoke")
        losses[method] = _metrics(rec)[0]["loss"]
    assert len(set(losses.values())) == 3
    assert "sal" in _metrics(_record(ctx, "in9", "Sal"))[0]


def test_table4_smoke_through_the_cli(tmp_path):
    from typer.testing import CliRunner

    from repro.cli import app
    from repro.report.tables import read_published

    res = CliRunner().invoke(app, ["cfaug", "table4", "--profile", "smoke", "--runs-dir", str(tmp_path / "runs"),
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    import pandas as pd

    table = pd.read_csv(next((tmp_path / "out").rglob("table4.csv")))
    published = read_published("cfaug", "table4")
    assert list(table["method"]) == list(published["method"]) and (table["flip_n"] == 2).all()
    assert table.loc[0, "improv_pct"] == 0 and "flip_published" in table
    prov = json.loads(next((tmp_path / "out").rglob("table4.json")).read_text())
    assert prov["profile"] == "smoke" and prov["synthetic_data"] is True and prov["seeds"] == [5, 10]
    again = CliRunner().invoke(app, ["cfaug", "table4", "--profile", "smoke", "--runs-dir", str(tmp_path / "runs"),
                                     "--dry-run"])
    states = plan_states(again.output)
    assert again.exit_code == 0 and set(states) == {"done"} and f"{len(states)} runs" in again.output, again.output


def test_paper_profile_without_data_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from repro.cli import app

    res = CliRunner().invoke(app, ["cfaug", "table6", "--runs-dir", str(tmp_path / "runs"),
                                   "--data-root", str(tmp_path)])
    assert res.exit_code == 2 and "cct/ not found" in res.output and "--profile smoke" in res.output


def test_saliency_and_shift_tables_reuse_the_accuracy_runs(tmp_path):
    """Tables 3 and 2 plan a subset of Table 1's configs (the same run keys); Table 2's AUPR is evaluated once
    per run and cached; the table carries AUPR and accuracy rows in the published order."""
    from typer.testing import CliRunner

    import pandas as pd

    from repro.cli import app
    from repro.report.claims import FAILS, HOLDS, WEAK
    from repro.report.tables import read_published

    args = ["--profile", "smoke", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]
    res = CliRunner().invoke(app, ["cfaug", "table3", *args])
    assert res.exit_code == 0, res.output
    shift = pd.read_csv(next((tmp_path / "out").rglob("table3.csv")))
    assert list(shift["method"]) == ["Orig", "Sal", "CF(CAGAN)", "F(Shuffle)", "CF(CAGAN)+F(Shuffle)+Sal"]
    assert shift["shift_mean"].notna().all() and (shift["shift_n"] == 2).all()
    claims = pd.read_csv(tmp_path / "out" / "tables" / "cfaug" / "table3_claims.csv")
    assert len(claims) == 3 and set(claims["result"]) <= {HOLDS, WEAK, FAILS}  # two seeds: tested
    assert claims["note"].str.contains("synthetic data").all() and (claims["profile"] == "smoke").all()
    assert "synthetic data" in res.output
    runs_before = {p.name for p in (tmp_path / "runs").iterdir()}
    res = CliRunner().invoke(app, ["cfaug", "table2", *args])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(next((tmp_path / "out").rglob("table2.csv")))
    published = read_published("cfaug", "table2")
    assert list(zip(table["method"], table["metric"])) == list(zip(published["method"], published["metric"]))
    aupr = table[table["metric"] == "sal_aupr"]
    assert aupr["original_mean"].between(0, 100).all() and aupr["mixed_next_n"].eq(2).all()
    caches = list((tmp_path / "runs").rglob("saliency-*.json"))
    assert len(caches) == 2 * 6  # 6 configs x 2 seeds, each evaluated once
    assert runs_before <= {p.name for p in (tmp_path / "runs").iterdir()}


def test_loader_workers_do_not_change_the_result(tmp_path):
    """The augmentations draw from (run seed, epoch, image index), so 0 or 2 decoding workers train alike."""
    ctx = _ctx(tmp_path)
    results = []
    for workers in (0, 2):
        rec = _record(ctx, "cct", "CF(Tile)", epochs=2)
        rec = RunStore(ctx.runs_dir).record(rec.config.replace(method_args={**rec.config.method_args,
                                                                           "workers": workers}))
        RunStore(ctx.runs_dir).init(rec)
        results.append(train_run(rec, CPU, profile="smoke")["best"])
    assert results[0] == results[1]
