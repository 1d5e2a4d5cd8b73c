"""`--dry-run` reads, plans and estimates: it writes nothing anywhere, counts the runs that wait on a sweep, and
its time estimate comes from measurements only (done runs, bench speeds) or says there is none."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repro.cli import app
from repro.papers import PAPER_NAMES, get_paper
from repro.runs.estimate import estimate
from repro.runs.speeds import FOLDER, SUFFIX, Speed, write_speeds
from repro.runs.store import RunStore
from tests.conftest import SHARED_DATA, plant_done

runner = CliRunner()
ARTEFACTS = [(p, a) for p in PAPER_NAMES for a in get_paper(p).artefacts]


def tree_digest(root: Path) -> str:
    """Every path under `root` (folders too) with its size, mtime and content hash; 'absent' if there is none."""
    if not root.exists():
        return "absent"
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        h.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        if p.is_file() and st.st_size < 1 << 20:
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("paper,artefact", ARTEFACTS)
def test_dry_run_writes_nothing(paper, artefact, tmp_path, tiny_tap_root):
    runs, out = tmp_path / "runs", tmp_path / "out"
    runs.mkdir()
    (runs / "keep.txt").write_text("a runs dir with content")
    roots = (runs, out, tiny_tap_root)
    before = [tree_digest(r) for r in roots]
    res = runner.invoke(app, [paper, artefact, "--profile", "smoke", "--dry-run", "--data-root", str(tiny_tap_root),
                              "--runs-dir", str(runs), "--out", str(out)])
    assert res.exit_code in (0, 2), res.output  # 2: data missing, with its message
    assert "Traceback" not in res.output
    assert [tree_digest(r) for r in roots] == before


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data")
def test_figure6_dry_run_on_the_shared_data_is_fast_and_counts_both_stages(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    t0 = time.perf_counter()
    res = runner.invoke(app, ["tap", "figure6", "--dry-run", "--data-root", str(SHARED_DATA), "--runs-dir", str(runs),
                              "--out", str(out), "--device", "cpu"])
    seconds = time.perf_counter() - t0
    text = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert seconds < 10 and not runs.exists() and not out.exists()
    # 3 archs: sweep 3 penalties x 10 lambdas + Base, No XS x 5 seeds; then 3 penalties x seeds 1-4 at the chosen
    # lambda (seed 0 is the sweep's own run)
    assert "165 planned rows x seeds, 156 distinct runs" in text
    assert "stage 1 (planned now): 120 runs; stage 2 (after the lambda sweep): 36 runs" in text
    assert "data not prepared: 156 runs planned from the raw data" in text
    assert "no measurement for 156 runs" in text and "vgg16 tap 224px 4,695 images batch 16" in text


def _actdiff_plan(tmp_path: Path):
    paper = get_paper("actdiff")
    ctx = paper.context("smoke", None, "code", {}, tmp_path / "out", None, tmp_path / "runs", dry_run=True)
    store = RunStore(tmp_path / "runs")
    return ctx, store, [r for r in paper.artefacts["table1"].plan(ctx) if r.label.startswith("CNN")]


def test_estimate_uses_done_runs_of_the_same_kind(tmp_path):
    ctx, store, runs = _actdiff_plan(tmp_path)
    classify, gradmask = runs[0], next(r for r in runs if "Gradmask" in r.label)
    done = plant_done(store, classify.config, seconds=30.0, epochs=2)  # 15 s per epoch, on the cpu
    twin = replace(classify, config=replace(classify.config, seed=7))  # same kind, not done
    parts = estimate([(twin, store.record(twin.config)), (gradmask, store.record(gradmask.config))],
                     [(classify, done)], "cpu", ctx.out)
    by_source = {p.source: p for p in parts}
    assert by_source["from 1 done runs of the same kind"].seconds == pytest.approx(15.0 * twin.config.epochs)
    assert by_source["no measurement"].runs == 1 and by_source["no measurement"].seconds is None
    assert "no measurement for 1 runs (1 cnn gradmask 28px 32 images" in str(by_source["no measurement"])
    assert estimate([(twin, store.record(twin.config))], [(classify, done)], "nvidia-h100", ctx.out)[0].seconds is None


def test_estimate_uses_bench_speeds_and_names_them(tmp_path):
    ctx, store, runs = _actdiff_plan(tmp_path)
    run = runs[0]
    speed = Speed("cpu", run.config.model, "none", run.config.batch_size, 28, 0.5, "2026-12-06", "smoke")
    path = write_speeds(ctx.out / FOLDER / f"cpu{SUFFIX}", [speed])
    [part] = estimate([(run, store.record(run.config))], [], "cpu", ctx.out)
    steps = -(-run.n_train // run.config.batch_size) * run.config.epochs
    assert part.seconds == pytest.approx(0.5 * steps)
    assert str(part).endswith(f"from bench cpu 2026-12-06 (smoke profile, {path})")


def test_estimate_without_measurement_says_so(tmp_path):
    ctx, store, runs = _actdiff_plan(tmp_path)
    parts = estimate([(r, store.record(r.config)) for r in runs], [], "cpu", ctx.out)
    assert [(p.source, p.runs, p.seconds) for p in parts] == [("no measurement", len(runs), None)]
