"""Bad input through the CLI, as a hostile tester would type it: every case exits with its status (2: bad input),
names the problem in one paragraph and prints no traceback. Usage errors are click's own box; the project's
errors are one `error:` line (`repro.errors.explain`)."""

from __future__ import annotations

import gzip
import shutil
import sys

import pytest
import torch
from typer.testing import CliRunner

from repro.cli import app
from repro.papers import PAPER_NAMES, get_paper
from tests.conftest import SHARED_DATA

runner = CliRunner()
SMOKE = ["--profile", "smoke"]
DRY = [*SMOKE, "--dry-run", "--runs-dir", "{runs}"]


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, str]:
    """Paths the cases refer to: a plain file, and data roots each broken in one way."""
    tmp = tmp_path_factory.mktemp("bad_input")
    (tmp / "file").write_text("not a folder")
    paths = {"file": tmp / "file", "runs": tmp / "runs", "empty": tmp / "empty", "tap": tmp / "tap",
             "idx": tmp / "idx", "magic": tmp / "magic", "dogs": tmp / "dogs"}
    paths["empty"].mkdir()
    if SHARED_DATA.exists():
        for name in ("tap", "idx", "magic"):
            shutil.copytree(SHARED_DATA / "MNIST", paths[name] / "MNIST")
        normal = paths["tap"] / "chest_xray" / "train" / "NORMAL"  # PNEUMONIA/ and test/ missing
        normal.mkdir(parents=True)
        for src in sorted((SHARED_DATA / "chest_xray" / "train" / "NORMAL").iterdir())[:2]:
            shutil.copy(src, normal)
        idx = paths["idx"] / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
        idx.write_bytes(idx.read_bytes()[:5000])  # truncated
        bad = paths["magic"] / "MNIST" / "subset" / "train-5k-images-idx3-ubyte.gz"
        bad.write_bytes(gzip.compress(b"\x01\x02\x03\x04" + bytes(100), mtime=0))  # not an IDX file
        train = paths["dogs"] / "dogs-vs-cats" / "train"
        train.mkdir(parents=True)
        images = sorted((SHARED_DATA / "dogs-vs-cats" / "train").iterdir())
        for src in images[:2] + images[-2:]:  # cats and dogs
            shutil.copy(src, train)
        first = sorted(train.iterdir())[0]
        first.write_bytes(first.read_bytes()[:300])  # truncated JPEG
    return {k: str(v) for k, v in paths.items()}


NEEDS_DATA = pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data not present")
NEEDS_NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")



def case(name: str, args: list[str], code: int, needle: str, marks=()) -> object:
    """One row: arguments ({name} = a path of `roots`), the exit status, text the message must contain."""
    return pytest.param(args, code, needle, id=name, marks=marks)


CASES = [
    case("unknown paper", ["nosuch", "table1"], 2, "No such command 'nosuch'"),
    case("unknown artefact", ["actdiff", "table9"], 2, "No such command 'table9'"),
    case("unknown profile", ["actdiff", "table1", "--profile", "huge"], 2, "'huge' is not one of"),
    case("unknown option", ["tap", "figure5", "--nope"], 2, "No such option"),
    case("seeds negative", ["actdiff", "table1", "--seeds", "-1"], 2, "--seeds"),
    case("seeds zero", ["actdiff", "table1", "--seeds", "0"], 2, "--seeds"),
    case("seeds text", ["tap", "figure5", "--seeds", "abc"], 2, "--seeds"),
    case("workers zero", ["actdiff", "table1", "--workers", "0"], 2, "--workers"),
    case("workers text", ["actdiff", "table1", "--workers", "many"], 2, "--workers"),
    case("pack negative", ["actdiff", "table1", "--pack", "-1"], 2, "--pack"),
    case("checkpoint seconds negative", ["cfaug", "table3", "--checkpoint-seconds", "-1"], 2, "--checkpoint-seconds"),
    case("unknown fidelity", ["actdiff", "table1", "--fidelity", "nope"], 2, "'nope' is not one of"),
    case("unknown init", ["masktune", "figure2", "--init", "nope"], 2, "'nope' is not one of"),
    case("unknown launcher", ["actdiff", "table1", "--launcher", "pbs"], 2, "'pbs' is not one of"),
    case("list unknown profile", ["list", "--profile", "huge"], 2, "'huge' is not one of"),
    case("status seeds zero", ["status", "--seeds", "0"], 2, "--seeds"),
    case("bench unknown profile", ["bench", "--profile", "huge"], 2, "'huge' is not one of"),
    case("switch unknown name", ["actdiff", "table1", "--switch", "nonsense=1", *DRY], 2, "unknown switch nonsense"),
    case("switch unknown id", ["masktune", "figure2", "--switch", "M-1=abc", *DRY], 2, "unknown switch M-1"),
    case("switch not NAME=VALUE", ["actdiff", "table1", "--switch", "abc", *DRY], 2, "is not NAME=VALUE"),
    case("switch bad choice", ["actdiff", "table1", "--switch", "A-6=l3", *DRY], 2, "takes 'l1' (code) or 'l2' (paper), not 'l3'"),
    case("switch integer", ["tap", "figure5", "--switch", "D-6=abc", *DRY], 2, "D-6 vgg_layers takes an integer"),
    case("switch number", ["cfaug", "table3", "--switch", "grad_clip=big", *DRY], 2, "C-11 grad_clip takes a number"),
    case("switch boolean", ["masktune", "figure2", "--switch", "D-10=maybe", *DRY], 2, "D-10 waterbirds_pretrained "
                                                                                    "takes true or false"),
    case("slurm option not KEY=VALUE", ["actdiff", "table1", *SMOKE, "--launcher", "slurm", "--slurm-opt", "abc",
                                    "--runs-dir", "{runs}"], 2, "--slurm-opt 'abc' is not NAME=VALUE"),
    case("unknown device", ["actdiff", "table1", *SMOKE, "--device", "tpu", "--runs-dir", "{runs}"], 2, "--device 'tpu'"),
    case("cuda absent", ["actdiff", "table1", *SMOKE, "--device", "cuda", "--runs-dir", "{runs}"], 2,
                 "CUDA is not available", marks=NEEDS_NO_CUDA),
    case("cuda index absent", ["tap", "figure5", *SMOKE, "--device", "cuda:7", "--runs-dir", "{runs}"], 2,
                 "--device cuda:7", marks=NEEDS_NO_CUDA),
    case("bench unknown device", ["bench", "--device", "tpu"], 2, "--device 'tpu'"),
    case("bench unknown grid", ["bench", *SMOKE, "--device", "cpu", "--only", "nosuch", "--out", "{empty}"], 2,
     "--only 'nosuch' matches no benchmark grid; the grids are actdiff table1"),
    case("report unknown paper", ["report", "nosuch"], 2, "unknown paper 'nosuch'"),
    case("prepare unknown paper", ["data", "prepare", "nosuch", "--runs-dir", "{runs}"], 2, "unknown paper 'nosuch'"),
    case("out is a file", ["actdiff", "figure3", *SMOKE, "--out", "{file}", "--runs-dir", "{runs}"], 2,
     "--out {file} is a file, not a folder"),
    case("out under a file", ["tap", "figure5", *SMOKE, "--out", "{file}/sub", "--runs-dir", "{runs}"], 2,
     "--out {file}/sub lies under the file {file}"),
    case("runs dir is a file", ["actdiff", "figure3", *SMOKE, "--runs-dir", "{file}"], 2,
     "--runs-dir (or REPRO_RUNS) {file} is a file"),
    case("runs dir under a file", ["cfaug", "table3", *SMOKE, "--runs-dir", "{file}/runs"], 2,
     "{file}/runs lies under the file {file}"),
    case("status runs dir is a file", ["status", "--runs-dir", "{file}"], 2, "--runs-dir {file} is a file"),
    case("list runs dir is a file", ["list", "--runs-dir", "{file}"], 2, "--runs-dir {file} is a file"),
    case("status runs dir under a file", ["status", "--runs-dir", "{file}/x"], 2, "lies under the file {file}"),
    case("data root is a file", ["actdiff", "table1", *DRY, "--data-root", "{file}"], 2, "--data-root (or REPRO_DATA) "
                                                                                   "{file} is a file"),
    case("prepare data root is a file", ["data", "prepare", "tap", "--data-root", "{file}", "--runs-dir", "{runs}"], 2,
     "{file} is a file, not a folder"),
    case("actdiff X-ray data missing", ["data", "prepare", "actdiff", "--data-root", "{empty}", "--runs-dir", "{runs}"], 2,
     "actdiff: no dataset to prepare (--data-root {empty}). Expected NIH/ and PadChest/"),
    case("masktune data missing", ["masktune", "table1", *DRY, "--data-root", "{empty}"], 2, "celeba: missing"),
    case("missing data names the download command", ["tap", "figure5", *DRY, "--data-root", "{empty}"], 2,
         "`repro data download mnist --data-root {empty}` fetches the data it reads"),
    case("masktune no dataset prepared", ["masktune", "figure3", *DRY, "--data-root", "{empty}"], 2,
     "none of celeba, waterbirds is prepared"),
    case("class folder missing", ["tap", "figure6", *DRY, "--data-root", "{tap}"], 2,
                 "chest_xray/train/PNEUMONIA", marks=NEEDS_DATA),
    case("truncated IDX file", ["data", "prepare", "tap", "--data-root", "{idx}", "--runs-dir", "{runs}"], 2,
                 "t10k-images-idx3-ubyte.gz: cannot be read", marks=NEEDS_DATA),
    case("not an IDX file", ["data", "prepare", "tap", "--data-root", "{magic}", "--runs-dir", "{runs}"], 2,
                 "not an IDX file (bad magic number", marks=NEEDS_DATA),
    case("truncated image", ["data", "prepare", "masktune", "--data-root", "{dogs}", "--runs-dir", "{runs}"],
                 2, "cannot be decoded as an image", marks=NEEDS_DATA),
    # issue 25: values that used to be accepted without a word or gave a wrong result
    case("out empty", ["tap", "figure5", *SMOKE, "--out", "", "--runs-dir", "{runs}"], 2, "an empty path"),
    case("runs dir empty", ["actdiff", "table1", *SMOKE, "--dry-run", "--runs-dir", " "], 2, "an empty path"),
    case("data root empty", ["actdiff", "table1", *DRY, "--data-root", ""], 2, "an empty path"),
    case("status runs dir empty", ["status", "--runs-dir", ""], 2, "an empty path"),
    case("seeds a billion", ["actdiff", "table1", "--dry-run", "--seeds", "1000000000"], 2, "--seeds"),
    case("seeds a million", ["actdiff", "table1", "--dry-run", "--seeds", "1000000"], 2, "--seeds"),
    case("pack too large", ["actdiff", "table1", *DRY, "--pack", "100000"], 2, "--pack"),
    case("workers too many", ["actdiff", "table1", *DRY, "--workers", "100000"], 2, "--workers"),
    case("switch VGG layers", ["tap", "figure5", *DRY, "--switch", "D-6=99"], 2,
         "switch D-6 vgg_layers takes an integer, one of 4, 5, not '99'"),
    case("switch grad clip negative", ["cfaug", "table3", *DRY, "--switch", "grad_clip=-1"], 2,
         "switch C-11 grad_clip takes a number, at least 0, not '-1'"),
    case("switch grad clip nan", ["cfaug", "table3", *DRY, "--switch", "grad_clip=nan"], 2,
         "grad_clip takes a number, at least 0, not 'nan'"),
    case("switch batch size zero", ["masktune", "figure2", *DRY, "--switch", "svhn_batch=0"], 2,
         "svhn_batch takes an integer, at least 1, not '0'"),
    case("switch seed count negative", ["actdiff", "figure6", *DRY, "--switch", "figure6_seeds=-3"], 2,
         "figure6_seeds takes an integer, at least 1 and at most 1000, not '-3'"),
    case("switch ddof 9", ["masktune", "figure2", *DRY, "--switch", "D-19=9"], 2, "std_ddof takes an integer, one of 0, 1"),
    case("switch by name and id", ["actdiff", "table1", *DRY, "--switch", "gradmask_norm=l1", "--switch", "A-6=l2"],
         2, "switch A-6 is given twice, as A-6=l2 and as gradmask_norm=l1"),
    case("switch repeated", ["actdiff", "table1", *DRY, "--switch", "A-6=l2", "--switch", "A-6=l1"], 2,
         "--switch A-6 is given twice (A-6=l2 and A-6=l1)"),
    case("slurm option repeated", ["actdiff", "table1", *DRY, "--launcher", "slurm", "--slurm-opt", "account=a",
                                   "--slurm-opt", "account=b"], 2, "--slurm-opt account is given twice"),
]


@pytest.mark.parametrize("args,code,needle", CASES)
def test_bad_input(args, code, needle, roots):
    res = runner.invoke(app, [a.format(**roots) for a in args])
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output and (res.exception is None or isinstance(res.exception, SystemExit))
    text = " ".join(res.output.split())
    assert needle.format(**roots) in text, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 or "Usage:" in res.output, res.output  # one paragraph, or click's usage box


def test_the_table_covers_at_least_40_cases():
    assert len(CASES) >= 40


def test_a_bug_is_one_paragraph_naming_its_logged_traceback_and_REPRO_DEBUG_shows_it(monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("repro.pipeline.artefact_states", broken)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    res = runner.invoke(app, ["status"])
    assert res.exit_code == 1 and "internal error (ZeroDivisionError: division by zero)" in res.output
    assert "REPRO_DEBUG=1" in res.output and "Traceback" not in res.output
    logs = list((tmp_path / "cache" / "repro" / "logs").glob("error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in res.output
    assert "Traceback" in logs[0].read_text() and "ZeroDivisionError: division by zero" in logs[0].read_text()
    monkeypatch.setenv("REPRO_DEBUG", "1")
    res = runner.invoke(app, ["status"])
    assert isinstance(res.exception, ZeroDivisionError)


@pytest.mark.parametrize("error", [ValueError("bad value"), KeyError("key"), FileNotFoundError("gone")])
def test_a_python_error_that_is_no_user_error_is_a_bug(monkeypatch, tmp_path, error):
    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr("repro.pipeline.artefact_states", broken)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    res = runner.invoke(app, ["list"])
    assert res.exit_code == 1 and f"internal error ({type(error).__name__}" in res.output, res.output


def test_a_failed_run_exits_1_naming_the_run_and_keeps_its_traceback(monkeypatch, tmp_path, tiny_tap_root):
    def boom(self, epoch):
        raise RuntimeError("boom")

    monkeypatch.setattr("repro.engine.PackJob.train_epoch", boom)
    res = runner.invoke(app, ["tap", "lambdas", *SMOKE, "--device", "cpu", "--runs-dir", str(tmp_path / "runs"),
                              "--out", str(tmp_path / "out"), "--data-root", str(tiny_tap_root)])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    text = " ".join(res.output.split())
    assert "run(s) failed (RuntimeError: boom)" in text and "running the command again retries" in text
    failed = list((tmp_path / "runs").glob("tap/*/failed"))
    assert failed and "RuntimeError: boom" in failed[0].read_text()


def _invalid_values(switch) -> list[str]:
    """Values just outside a numeric switch's admitted set, plus non-finite and non-numeric text."""
    from repro.config import Bounds

    allowed = switch.allowed
    if isinstance(allowed, Bounds):
        out = [repr(allowed.low) if allowed.open_low else repr(allowed.low - 1), "nan", "inf", "-inf"]
        out += [] if allowed.high == float("inf") else [repr(allowed.high + 1)]
    else:
        out = [str(max(allowed) + 1), str(min(allowed) - 1)]
    return [v.replace(".0", "") if isinstance(switch.default, int) and v.endswith(".0") else v for v in out] + ["abc"]


NUMERIC_SWITCHES = [pytest.param(paper, s, id=f"{paper}-{s.id}") for paper in PAPER_NAMES
                    for s in get_paper(paper).switches if s.numeric]


def test_the_registry_has_numeric_switches_and_each_declares_its_values():
    assert len(NUMERIC_SWITCHES) >= 8
    assert all(p.values[1].allowed is not None for p in NUMERIC_SWITCHES)


@pytest.mark.parametrize("paper,switch", NUMERIC_SWITCHES)
def test_every_numeric_switch_rejects_an_out_of_range_value(paper, switch, tmp_path):
    artefact = next(iter(get_paper(paper).artefacts))
    for value in _invalid_values(switch):
        for given in (switch.id, switch.name):
            res = runner.invoke(app, [paper, artefact, *SMOKE, "--dry-run", "--runs-dir", str(tmp_path / "runs"),
                                      "--switch", f"{given}={value}"])
            assert res.exit_code == 2, (given, value, res.output)
            assert f"switch {switch.id} {switch.name} takes" in " ".join(res.output.split()), res.output
            assert "Traceback" not in res.output and not (tmp_path / "runs").exists()
    res = runner.invoke(app, [paper, artefact, *SMOKE, "--dry-run", "--runs-dir", str(tmp_path / "runs"),
                              "--switch", f"{switch.id}={switch.paper}"])
    assert "takes" not in res.output, res.output  # the paper's own value is admitted


def test_a_missing_optional_extra_names_the_install_step(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if not installed
    res = runner.invoke(app, ["actdiff", "table1", *SMOKE, "--launcher", "slurm", "--runs-dir", str(tmp_path / "r")])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "internal error" not in text and "Traceback" not in text, res.output
    assert "optional package submitit is not installed" in text and "pip install 'repro[slurm]'" in text, res.output
    assert not (tmp_path / "r").exists()  # refused before any work


def test_a_full_disk_exits_1_naming_the_disk_and_the_fix(tmp_path, full_disk):
    full_disk("checkpoint.pt")  # torch.save into a full disk raises a RuntimeError of its own
    res = runner.invoke(app, ["actdiff", "figure3", *SMOKE, "--device", "cpu", "--runs-dir", str(tmp_path / "runs"),
                              "--out", str(tmp_path / "out")])
    assert res.exit_code == 1 and "Traceback" not in res.output and "internal error" not in res.output, res.output
    text = " ".join(res.output.split())
    assert "run(s) failed (No space left on device: " in text and "The disk is full: free some space" in text, text
    runs = tmp_path / "runs" / "actdiff"
    assert list(runs.glob("*/failed")) and not list(runs.glob("*/.*.tmp"))  # resumable: no temp file left
