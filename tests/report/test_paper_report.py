"""`repro report`: a paper's Markdown and self-contained HTML from the output folders, never training."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from repro.cli import app
from repro.papers import PUBLISHED, get_paper
from repro.report.claims import Claim, Compare, evaluate_claims, report_claims
from repro.report.paper_report import owner
from repro.runs.store import RunStore
from tests.conftest import plant_done

runner = CliRunner()
SENTENCE = "Both *actdiff* and *gradmask* improve performance of the model"
CLAIMS = {f"{m} {what}": Claim(SENTENCE, (Compare(m, ">", "Classify"),))
          for m, what in (("Actdiff", "beats Classify"), ("Gradmask", "fixes the CNN"), ("MSD", "needs MSD"))}
SEEDS = {"Actdiff": [0.9, 0.95, 0.92], "Classify": [0.5, 0.52, 0.49], "Gradmask": [0.4, 0.45, 0.41]}


def invoke(*args: str):
    res = runner.invoke(app, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def fake_done_runs(runs_dir: Path, out: Path) -> None:
    """Every smoke Table 1 run done with a fixed result, so that building the table trains nothing."""
    paper = get_paper("actdiff")
    ctx = paper.context("smoke", None, "code", {}, out, None, runs_dir)
    store = RunStore(runs_dir)
    for i, run in enumerate(paper.artefacts["table1"].plan(ctx)):
        best = dict.fromkeys(("train", "valid", "test", "test_clean"), {"accuracy": 0.8125 + i / 10_000})
        plant_done(store, run.config, best=best, final=best, best_epoch=3, device="cpu (test)")


def tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Smoke outputs of actdiff Table 1 (fake done runs) and Figure 1, Table 1's claims and a stray file; then
    `repro report actdiff` without --profile. Returns (out, runs dir, files of the runs dir before the report)."""
    tmp = tmp_path_factory.mktemp("report")
    runs, out = tmp / "runs", tmp / "out"
    fake_done_runs(runs, out)
    for art in ("table1", "figure1"):
        invoke("actdiff", art, "--profile", "smoke", "--runs-dir", str(runs), "--out", str(out), "--device", "cpu")
    ctx = get_paper("actdiff").context("smoke", None, "code", {}, out, None, runs)
    report_claims(ctx, "table1", evaluate_claims(CLAIMS, SEEDS), {"profile": "smoke"},
                  {"MSD needs MSD": "the MSD runs are not built"})
    (out / "tables" / "actdiff" / "stray.csv").write_text("a,b\n1,2\n")
    before = tree(runs)
    invoke("report", "actdiff", "--out", str(out), "--runs-dir", str(runs))
    return out, runs, before


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_and_records_get_the_users_umask(tmp_path, umask, mode):
    """Tables (CSV), sidecars (JSON), figures (PNG, NPZ), reports (Markdown, HTML) and run records alike."""
    runs, out = tmp_path / "runs", tmp_path / "out"
    before = os.umask(umask)
    try:
        fake_done_runs(runs, out)
        for art in ("table1", "figure1"):
            invoke("actdiff", art, "--profile", "smoke", "--runs-dir", str(runs), "--out", str(out))
        invoke("report", "actdiff", "--out", str(out), "--runs-dir", str(runs))
    finally:
        os.umask(before)
    modes = {p: p.stat().st_mode & 0o777 for p in tree(out) | tree(runs) if p.is_file()}
    assert {p.suffix for p in modes} >= {".csv", ".json", ".png", ".npz", ".md", ".html"}
    assert {p: m for p, m in modes.items() if m != mode} == {}


def section(md: str, name: str) -> str:
    return re.search(rf"^## {name}:.*?(?=^## |\Z)", md, re.S | re.M).group(0)


def test_table1_beside_the_papers_numbers(built):
    out = built[0]
    md = (out / "reports" / "actdiff.md").read_text()
    table = pd.read_csv(out / "tables" / "actdiff" / "table1.csv", dtype=str)
    published = pd.read_csv(PUBLISHED / "actdiff_table1.csv", dtype=str)
    row = next(line for line in section(md, "table1").splitlines() if line.startswith("| Conv AE | Actdiff |"))
    assert f"| {table.loc[1, 'train_mean']} (1, no CI) |" in row and "| not tested: our n < 2 |" in row
    assert f"| {published.loc[1, 'train_mean']} ± {published.loc[1, 'train_std']} |" in row
    assert f"| {table.loc[1, 'train_diff']} |" in row
    compared = sum(table[f"{v}_within_tol"].isin(["True", "False"]).sum() for v in ("train", "valid", "best_epoch"))
    assert "compared cells within tolerance" not in md  # smoke: none counted against the paper's tolerance
    assert f"{compared} cells at profile `smoke` not counted against the tolerance (not comparable" in md
    assert "| not counted (smoke) |" in row and "| cannot fail |" in row  # a best epoch of 0..1 against 140 +- 157
    assert "0 consistent, 0 inconsistent, 66 not tested" in md and "Student t-interval" in md
    assert "](../tables/actdiff/table1.csv)" in md and "profile smoke: reduced run, not comparable with the paper**" \
        ", seeds 0" in md


def test_every_page_table_and_figure_names_the_smoke_profile(built):
    """The title, a banner, every table, claims list and figure caption, and the PNG's own stamp; no init for
    actdiff, whose models never start from pretrained weights."""
    import matplotlib.image

    out = built[0]
    md = (out / "reports" / "actdiff.md").read_text()
    label = "profile smoke: reduced run, not comparable with the paper"
    assert md.startswith("# actdiff: ") and label in md.splitlines()[0]
    assert "**Profile `smoke`: fewer epochs, seeds or images than the paper" in md
    for name in ("table1", "figure1"):
        assert label in section(md, name) and "init `" not in section(md, name)
    captions = [line for line in md.splitlines() if line.startswith(("[`", "Claims"))]
    assert captions and all(label in line for line in captions), captions
    assert f"<title>repro report: actdiff, {label}</title>" in (out / "reports" / "actdiff.html").read_text()
    png = matplotlib.image.imread(out / "figures" / "actdiff" / "figure1.png")
    stamp = png[-25:, :, :3]  # the red stamp line below the plot
    assert ((stamp[..., 0] > 0.5) & (stamp[..., 1] < 0.3)).any()


def test_claims_missing_artefacts_and_other_files(built):
    md = (built[0] / "reports" / "actdiff.md").read_text()
    table1 = section(md, "table1")
    assert "3 claims checked: 1 holds, 1 does not hold, 1 n/a" in md
    assert "| `table1` | table | yes | 1 holds, 1 does not hold, 1 n/a |" in md
    assert "| Gradmask fixes the CNN | does not hold |" in table1 and "the MSD runs are not built" in table1
    assert "data missing or not prepared" in section(md, "figure4")  # the MSD slices are not prepared there
    assert "data missing or not prepared" in section(md, "figure5b")
    figure6 = section(md, "figure6")  # shares 2 of its 10 smoke runs with Table 1
    assert "not run: 2 of 10 runs done" in figure6 and "`repro actdiff figure6 --profile smoke --out " in figure6
    assert "runs done, not built" in section(md, "table2")
    assert "![figure1.png](../figures/actdiff/figure1.png)" in section(md, "figure1")
    assert "## Other files" in md and "[`stray.csv`]" in md
    assert "**2 of 11 artefacts have results**" in md


def test_html_is_one_self_contained_file(built):
    out = built[0]
    page = (out / "reports" / "actdiff.html").read_text()
    assert sorted(p.name for p in (out / "reports").iterdir()) == ["actdiff.html", "actdiff.md"]
    assert page.count('src="data:image/png;base64,') == 1 and 'src="../' not in page
    assert "<td>0.80 ± 0.26</td>" in page and '<a href="../tables/actdiff/table1.csv">' in page
    assert page.count('<div class="scroll"><table>') == page.count("<table>") and ".scroll{overflow-x:auto" in page


def test_the_report_trains_nothing(built):
    _, runs, before = built
    assert tree(runs) == before


def test_an_empty_out_says_how_to_make_results_and_all_writes_an_index(tmp_path):
    res = invoke("report", "all", "--out", str(tmp_path), "--profile", "quick", "--runs-dir", str(tmp_path / "runs"))
    assert "index.html" in res.output and not (tmp_path / "runs").exists()
    md = (tmp_path / "reports" / "masktune.md").read_text()
    assert "**0 of 6 artefacts have results**" in md and "No artefact has results" in md
    assert "`repro masktune all --profile quick`" in md
    index = (tmp_path / "reports" / "index.md").read_text()
    assert all(f"[{p}]({p}.html)" in index for p in ("actdiff", "tap", "cfaug", "masktune"))
    label = "profile quick: reduced run, not comparable with the paper"
    assert label in index.splitlines()[0]
    for page in ("actdiff", "tap", "cfaug", "masktune"):
        text = (tmp_path / "reports" / f"{page}.md").read_text()
        assert label in text.splitlines()[0] and "**Profile `quick`: fewer epochs" in text


def test_unknown_paper_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["report", "nosuch", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown paper 'nosuch'" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("stem,owned", [("table1", "table1"), ("table1_text", "table1"), ("table1_claims", "table1"),
                                        ("figure10", "figure10"), ("figure1", "figure1"), ("text", None)])
def test_files_belong_to_the_artefact_they_are_named_for(stem, owned):
    assert owner(stem, ["table1", "figure1", "figure10"]) == owned
