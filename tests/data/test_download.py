"""`repro data download` / `verify` against a test HTTP server on 127.0.0.1 (no other traffic): official-format
archives laid out as `repro data check` and the loaders read them, resume, mirrors, refusals, kills, offline."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repro.cli import app
from repro.data.catalog import DATASETS, dataset
from repro.data.download import catalogue
from repro.data.download.entries import KINDS, MIRROR_ENV
from repro.data import mnist_files as mnist_io
from tests.data.download_fixtures import FileServer, apply, mnist_files, pins, tar_gz, zip_of
from tests.data.test_celeba import write_celeba
from tests.data.test_cifar10 import write_cifar

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner(env={"COLUMNS": "250"})


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.close()


@pytest.fixture(scope="module")
def mnist() -> dict[str, bytes]:
    return mnist_files()


def serve(server: FileServer, monkeypatch, files: dict[str, dict[str, bytes]], bases=("m",), counts=None) -> None:
    """Serve `files` ({entry: {file: bytes}}) under each mirror base, pin the catalogue to them, point the
    mirror variable at the bases."""
    for base in bases:
        for entry, by_file in files.items():
            server.serve(base, entry, by_file)
    apply(pins(files, counts), monkeypatch.setattr)
    monkeypatch.setenv(MIRROR_ENV, " ".join(f"{server.url}/{b}" for b in bases))


def state(root: Path, name: str) -> str:
    return dataset(name).check(root).state


def no_traceback(res) -> None:
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)


# --- listing -------------------------------------------------------------------------------------------------


def test_list_shows_every_dataset_of_data_check_and_every_weight_file(tmp_path):
    res = invoke("data", "download", "--list", "--data-root", str(tmp_path))
    assert res.exit_code == 0, res.output
    rows = {line.split("│")[1].strip(): line for line in res.output.splitlines() if line.startswith("│")}
    for spec in DATASETS:
        assert spec.name in rows, spec.name
    weights = [e for e in catalogue.ENTRIES if e.weights]
    assert {e.name for e in weights} >= {"vgg16_imagenet", "resnet18_imagenet", "densenet121_imagenet",
                                         "resnet50_ram", "bit_s_r50x1"}
    for e in catalogue.ENTRIES:
        assert e.kind in rows[e.name] and "missing" in rows[e.name]
    assert {e.kind for e in catalogue.ENTRIES} == set(KINDS)
    assert "unpinned" in rows["bit_s_r50x1"] and "pinned" in rows["mnist"]


def test_print_urls_lists_every_file(tmp_path, monkeypatch):
    res = invoke("data", "download", "all", "--print-urls", "--data-root", str(tmp_path))
    assert res.exit_code == 0
    for e in catalogue.ENTRIES:
        for s in e.sources:
            lines = [l for l in res.output.splitlines() if l.endswith(str(e.target(s, tmp_path)))]
            assert lines, (e.name, s.file)
            assert all((s.checksum or "unpinned") in l for l in lines)
            assert all(u in res.output for u in s.urls)
    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:9/local")
    res = invoke("data", "download", "mnist", "--print-urls", "--data-root", str(tmp_path))
    assert res.output.count("http://127.0.0.1:9/local/mnist/") == 4 and "amazonaws" not in res.output


# --- direct HTTP: MNIST, CIFAR-10 ------------------------------------------------------------------------------


def test_mnist_happy_path_then_a_second_call_transfers_nothing(tmp_path, server, monkeypatch, mnist):
    serve(server, monkeypatch, {"mnist": mnist})
    res = invoke("data", "download", "mnist", "--data-root", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert state(tmp_path, "mnist") == "found" and "now finds" in res.output
    for name, body in mnist.items():
        assert (tmp_path / "MNIST" / "raw" / name).read_bytes() == body
    x, _ = mnist_io.read_mnist(*mnist_io.train_files(tmp_path / "MNIST")[:2])
    assert x.shape == (60_000, 28, 28) and mnist_io.read_mnist(*mnist_io.test_files(tmp_path / "MNIST"))[0].shape == (10_000, 28, 28)
    record = json.loads((tmp_path / "MNIST.repro-download.json").read_text())["sources"]
    assert set(record) == set(mnist) and record["train-labels-idx1-ubyte.gz"]["url"].startswith(server.url)
    assert not (tmp_path / ".repro-downloads" / "mnist").exists()
    served = len(server.requests)
    res = invoke("data", "download", "mnist", "--data-root", str(tmp_path))
    assert res.exit_code == 0 and len(server.requests) == served and "present" in res.output
    res = invoke("data", "verify", "mnist", "--data-root", str(tmp_path))
    assert res.exit_code == 0 and res.output.count("ok") >= 5


@pytest.mark.parametrize("range_ok", [True, False])
def test_a_dropped_connection_resumes_to_the_same_bytes(tmp_path, server, monkeypatch, mnist, range_ok):
    serve(server, monkeypatch, {"mnist": mnist})
    server.range_ok = range_ok
    path = "/m/mnist/t10k-images-idx3-ubyte.gz"
    server.drop_after[path] = len(mnist["t10k-images-idx3-ubyte.gz"]) // 2
    res = invoke("data", "download", "mnist", "--data-root", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "MNIST/raw/t10k-images-idx3-ubyte.gz").read_bytes() == mnist["t10k-images-idx3-ubyte.gz"]
    ranges = [r for p, r in server.requests if p == path]
    assert ranges[0] is None and ranges[1] == f"bytes={len(mnist['t10k-images-idx3-ubyte.gz']) // 2}-"


def test_a_wrong_checksum_moves_to_the_next_mirror_and_with_none_left_fails_cleanly(tmp_path, server, monkeypatch,
                                                                                       mnist):
    serve(server, monkeypatch, {"mnist": mnist}, bases=("bad", "good"))
    corrupt = bytearray(mnist["train-labels-idx1-ubyte.gz"])
    corrupt[100] ^= 0xFF
    server.files["/bad/mnist/train-labels-idx1-ubyte.gz"] = bytes(corrupt)
    res = invoke("data", "download", "mnist", "--data-root", str(tmp_path))
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "MNIST.repro-download.json").read_text())["sources"]
    assert "/good/" in record["train-labels-idx1-ubyte.gz"]["url"] and "/bad/" in record["t10k-labels-idx1-ubyte.gz"]["url"]

    root = tmp_path / "again"
    monkeypatch.setenv(MIRROR_ENV, f"{server.url}/bad")
    res = invoke("data", "download", "mnist", "--data-root", str(root))
    assert res.exit_code == 2 and "checksum mismatch" in res.output and "By hand" in res.output
    no_traceback(res)
    assert not (root / "MNIST/raw/train-labels-idx1-ubyte.gz").exists()
    assert not list((root / ".repro-downloads").rglob("train-labels*"))


@pytest.mark.parametrize("how", ["content-type", "body"])
def test_an_html_page_instead_of_the_file_is_refused(tmp_path, server, monkeypatch, mnist, how):
    serve(server, monkeypatch, {"mnist": mnist})
    path = "/m/mnist/t10k-labels-idx1-ubyte.gz"
    if how == "content-type":
        server.html.add(path)
    else:
        server.files[path] = b"\n  <!DOCTYPE html><html>quota exceeded</html>"
    res = invoke("data", "download", "mnist", "--data-root", str(tmp_path))
    assert res.exit_code == 2 and "HTML page" in res.output
    assert not (tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte.gz").exists()
    assert not list(tmp_path.rglob("t10k-labels*.part"))


def _cifar_tarball(tmp_path: Path, extra=None) -> bytes:
    folder = write_cifar(tmp_path / "src")
    (folder / "readme.html").write_text("<html>CIFAR-10</html>")
    return tar_gz(folder, "cifar-10-batches-py", extra)


def test_cifar10_tarball_is_laid_out_and_read_by_the_loader(tmp_path, server, monkeypatch):
    serve(server, monkeypatch, {"cifar10": {"cifar-10-python.tar.gz": _cifar_tarball(tmp_path)}})
    root = tmp_path / "root"
    res = invoke("data", "download", "cifar10", "--data-root", str(root))
    assert res.exit_code == 0, res.output
    assert state(root, "cifar10") == "found"
    from repro.data.cifar10 import load_cifar10

    assert load_cifar10(root / "cifar-10-batches-py") is not None
    assert [p.name for p in root.iterdir() if p.name.startswith(".cifar")] == []
    assert invoke("data", "verify", "cifar10", "--data-root", str(root)).exit_code == 0


def test_an_archive_with_dotdot_members_is_refused(tmp_path, server, monkeypatch):
    serve(server, monkeypatch, {"cifar10": {"cifar-10-python.tar.gz": _cifar_tarball(
        tmp_path, {"cifar-10-batches-py/../../evil.txt": b"x"})}}, counts={"cifar-10-python.tar.gz": None})
    root = tmp_path / "root"
    res = invoke("data", "download", "cifar10", "--data-root", str(root))
    assert res.exit_code == 2 and "outside its folder" in res.output
    assert not (root / "cifar-10-batches-py").exists() and not list(tmp_path.rglob("evil.txt"))
    assert not list(root.glob(".cifar-10-batches-py.extracting-*"))


def test_an_extraction_killed_half_way_leaves_no_half_folder_and_the_next_call_finishes(tmp_path, server,
                                                                                        monkeypatch):
    import tarfile

    serve(server, monkeypatch, {"cifar10": {"cifar-10-python.tar.gz": _cifar_tarball(tmp_path)}})
    root = tmp_path / "root"
    extract, calls = tarfile.TarFile.extract, []

    def killed(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return extract(self, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extract", killed)
    invoke("data", "download", "cifar10", "--data-root", str(root))
    assert not (root / "cifar-10-batches-py").exists() and not list(root.glob(".cifar*"))
    (root / ".cifar-10-batches-py.extracting-killed9" / "content").mkdir(parents=True)  # what a kill -9 leaves
    monkeypatch.setattr(tarfile.TarFile, "extract", extract)
    served = len(server.requests)
    res = invoke("data", "download", "cifar10", "--data-root", str(root))
    assert res.exit_code == 0, res.output
    assert len(server.requests) == served  # the archive was fetched and verified before the kill
    assert state(root, "cifar10") == "found" and not list(root.glob(".cifar*"))


def test_offline_gives_one_paragraph_exit_2_and_writes_nothing(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}/mirror")
    res = invoke("data", "download", "mnist", "--data-root", str(tmp_path))
    assert res.exit_code == 2
    no_traceback(res)
    assert f"http://127.0.0.1:{port}/mirror/mnist/train-images-idx3-ubyte.gz" in res.output
    assert "By hand: torchvision.datasets.MNIST" in res.output and str(tmp_path / "MNIST") in res.output
    assert not (tmp_path / "MNIST").exists() and not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_user_file_in_the_way_is_never_overwritten(tmp_path, server, monkeypatch, mnist):
    serve(server, monkeypatch, {"mnist": mnist})
    mine = tmp_path / "MNIST/raw/train-labels-idx1-ubyte.gz"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own file")
    res = invoke("data", "download", "mnist", "--data-root", str(tmp_path))
    assert res.exit_code == 2 and "never overwrites" in res.output
    assert mine.read_bytes() == b"my own file"


def test_verify_is_read_only_and_finds_a_changed_file(tmp_path, server, monkeypatch, mnist):
    serve(server, monkeypatch, {"mnist": mnist})
    assert invoke("data", "download", "mnist", "--data-root", str(tmp_path)).exit_code == 0
    changed = tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte.gz"
    body = bytearray(changed.read_bytes())
    body[40] ^= 0xFF
    changed.write_bytes(bytes(body))
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    res = invoke("data", "verify", "mnist", "--data-root", str(tmp_path))
    assert res.exit_code == 2 and "MISMATCH" in res.output and "t10k-labels" in res.output
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_a_weight_file_goes_where_its_loader_looks(tmp_path, server, monkeypatch):
    import io

    import torch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    buffer = io.BytesIO()
    torch.save({"fc.weight": torch.zeros(2, 2)}, buffer)
    serve(server, monkeypatch, {"resnet18_imagenet": {"resnet18-f37072fd.pth": buffer.getvalue()}})
    res = invoke("data", "download", "resnet18_imagenet")
    assert res.exit_code == 0, res.output
    path = Path(torch.hub.get_dir()) / "checkpoints" / "resnet18-f37072fd.pth"
    assert torch.load(path, weights_only=True)["fc.weight"].shape == (2, 2)
    assert path.with_name(path.name + ".repro-download.json").is_file()


def test_a_torch_hub_hash_prefix_is_a_sha256_prefix(tmp_path):
    from repro.data.download.checksums import Checksum, digests

    (tmp_path / "f").write_bytes(b"weights")
    found = digests(tmp_path / "f")
    assert Checksum.parse(f"sha256-prefix:{found.sha256[:8]}").matches(found)
    assert not Checksum.parse("sha256-prefix:00000000").matches(found)
    with pytest.raises(ValueError):
        Checksum.parse("crc32:1234")


# --- fragile hosts, Kaggle, registration ------------------------------------------------------------------------


def _corrected_waterbirds(tmp_path: Path) -> bytes:
    from PIL import Image

    folder = tmp_path / "wb"
    rows = ["img_id,img_filename,y,split,place,place_filename"]
    for i, split in enumerate((0, 1, 2)):
        name = f"001.Albatross/bird_{i}.jpg"
        rows.append(f"{i},{name},1,{split},0,x.jpg")
        (folder / "001.Albatross").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), 90).save(folder / name)
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return zip_of(folder, "waterbird_complete95_forest2water2")


def test_fragile_host_through_a_mirror_is_laid_out(tmp_path, server, monkeypatch):
    serve(server, monkeypatch, {"waterbirds_corrected": {"waterbird_corrected": _corrected_waterbirds(tmp_path)}})
    root = tmp_path / "root"
    res = invoke("data", "download", "waterbirds_corrected", "--data-root", str(root))
    assert res.exit_code == 0, res.output
    assert (root / "waterbird_corrected/metadata.csv").is_file() and state(root, "waterbirds_corrected") == "found"
    from repro.data.waterbirds import load_waterbirds

    assert load_waterbirds(root / "waterbird_corrected") is not None


def test_fragile_host_serving_html_gives_the_manual_step_and_target(tmp_path, server, monkeypatch):
    import dataclasses

    entry = catalogue.entry("waterbirds_corrected")
    source = dataclasses.replace(entry.sources[0], urls=(f"{server.url}/uc?id=x",), drive_id=None)
    patched = dataclasses.replace(entry, sources=(source,))
    monkeypatch.setattr(catalogue, "_BY_NAME", {**catalogue._BY_NAME, entry.name: patched})
    server.html.add("/uc?id=x")
    res = invoke("data", "download", "waterbirds_corrected", "--data-root", str(tmp_path))
    assert res.exit_code == 2 and "HTML page" in res.output and "1xPNYQskEXuPhuqT5Hj4hXPeJa9jh7liL" in res.output
    assert str(tmp_path / "waterbird_corrected") in res.output and not (tmp_path / "waterbird_corrected").exists()


def test_kaggle_without_the_package_or_token_gives_the_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    res = invoke("data", "download", "dogs_vs_cats", "--data-root", str(tmp_path))
    assert res.exit_code == 2
    assert "dogs-vs-cats/rules" in res.output and "kaggle competitions download -c dogs-vs-cats" in res.output
    assert str(tmp_path / "dogs-vs-cats" / "train") in res.output and not (tmp_path / "dogs-vs-cats").exists()


def test_kaggle_dataset_through_a_mirror_is_laid_out(tmp_path, server, monkeypatch):
    write_celeba(tmp_path / "kaggle", nested=True)
    serve(server, monkeypatch, {"celeba": {"celeba-dataset.zip": zip_of(tmp_path / "kaggle", "")}})
    root = tmp_path / "root"
    res = invoke("data", "download", "celeba", "--data-root", str(root))
    assert res.exit_code == 0, res.output
    assert state(root, "celeba") == "subset"  # the full 202,599 images are what "found" means
    from repro.data.celeba import load_celeba

    assert load_celeba(root / "celeba") is not None


def test_registration_entries_and_very_large_ones_need_a_step(tmp_path):
    res = invoke("data", "download", "nih_cxr14", "--data-root", str(tmp_path))
    assert res.exit_code == 2 and "nihcc.app.box.com" in res.output and str(tmp_path / "NIH") in res.output
    res = invoke("data", "download", "msd_liver", "--data-root", str(tmp_path))
    assert res.exit_code == 2 and "--large" in res.output and not (tmp_path / "MSD").exists()


def test_ensure_datasets_fetches_what_is_missing_into_the_default_root(tmp_path, server, monkeypatch, mnist):
    from repro.data.download.ensure import DATA_HOME_ENV, ensure_datasets
    from repro.data.download.run import to_fetch

    serve(server, monkeypatch, {"mnist": mnist})
    monkeypatch.setenv(DATA_HOME_ENV, str(tmp_path / "home"))
    assert [(e.name, size) for e, size in to_fetch(["mnist"], tmp_path / "home")] == [("mnist", sum(map(len, mnist.values())))]
    assert ensure_datasets(["mnist"], None) == tmp_path / "home" and state(tmp_path / "home", "mnist") == "found"
    served = len(server.requests)
    assert ensure_datasets(["mnist"], None) == tmp_path / "home" and len(server.requests) == served
    assert to_fetch(["mnist"], tmp_path / "home") == []


# --- must show ---------------------------------------------------------------------------------------------------


def test_download_mnist_then_masktune_figure2_smoke_finds_it(tmp_path, server, monkeypatch, mnist):
    serve(server, monkeypatch, {"mnist": mnist})
    root = tmp_path / "data"
    common = ["--profile", "smoke", "--data-root", str(root), "--out", str(tmp_path / "o"), "--runs-dir",
              str(tmp_path / "runs")]
    res = invoke("masktune", "figure2", *common, "--download", "--dry-run")  # says what and how large, fetches nothing
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "--download would fetch into" in text, text
    assert re.search(r"mnist \(http, [\d.]+ kB\); [\d.]+ kB in all", text), text
    assert not root.exists() and not (tmp_path / "runs").exists()
    assert invoke("data", "download", "mnist", "--data-root", str(root)).exit_code == 0
    served = len(server.requests)
    res = invoke("masktune", "figure2", *common, "--download")  # present: nothing fetched, the data is found
    assert res.exit_code == 0, res.output
    assert len(server.requests) == served and (tmp_path / "o/figures/masktune/figure2.png").is_file()


def test_every_artefact_names_datasets_that_data_check_and_download_know():
    from repro.data.catalog import dataset
    from repro.data.download.run import select
    from repro.papers import PAPER_NAMES, get_paper

    named = {d for p in PAPER_NAMES for a in get_paper(p).artefacts.values() for d in a.datasets}
    assert len(named) >= 15
    for name in named:
        dataset(name)  # a `repro data check` name
        assert [e.name for e in select(name)] == [name]


def test_kill_9_during_a_download_then_a_rerun_gives_identical_bytes(tmp_path, server, monkeypatch):
    files = mnist_files(n_train=3000, n_test=10, noise=True)
    serve(server, monkeypatch, {"mnist": files})
    server.delay = 0.02  # 16 KiB per 20 ms: the 2.4 MB training images take about 3 s
    pinned = tmp_path / "pins.json"
    pinned.write_text(json.dumps(pins({"mnist": files})))
    root = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REPRO_TEST_PINS": str(pinned), MIRROR_ENV: f"{server.url}/m"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.data.download_fixtures", "data", "download", "mnist",
                             "--data-root", str(root)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    part = root / ".repro-downloads/mnist/train-images-idx3-ubyte.gz.part"
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size > 300_000) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert part.exists() and not (root / "MNIST/raw/train-images-idx3-ubyte.gz").exists()
    server.delay = 0
    res = invoke("data", "download", "mnist", "--data-root", str(root))
    assert res.exit_code == 0, res.output
    assert (root / "MNIST/raw/train-images-idx3-ubyte.gz").read_bytes() == files["train-images-idx3-ubyte.gz"]
    assert any(p.endswith("train-images-idx3-ubyte.gz") and r for p, r in server.requests)  # resumed with Range
