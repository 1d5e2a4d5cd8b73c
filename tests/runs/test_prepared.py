"""The prepared-data store: its layout under a runs dir, atomic array writes, fingerprints and records."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from repro.config import RunConfig
from repro.data.image_sets import DatasetError
from repro.runs import prepared
from repro.runs.store import RunStore


def test_layout_is_runs_dir_prepared_name_and_round_trips(tmp_path):
    folder = prepared.prepared_dir(tmp_path, "paper/data")
    assert folder == tmp_path / "prepared" / "paper" / "data"  # run keys name this folder: it must not move
    assert prepared.runs_dir_of_prepared(folder, "paper/data") == tmp_path
    config = RunConfig(paper="p", dataset="d", model="m", method="x", seed=0, epochs=1, batch_size=1, lr=0.1)
    record = RunStore(tmp_path).record(config)
    assert prepared.runs_dir_of(record) == tmp_path
    assert prepared.run_prepared_root(record) / "paper/data" == folder


def test_record_is_read_back_and_a_missing_one_names_the_fix(tmp_path):
    folder = tmp_path / "prepared" / "x" / "y"
    assert not prepared.is_prepared(folder) and prepared.recorded(folder) is None
    with pytest.raises(DatasetError, match="source.json not found: prepare it"):
        prepared.read_record(folder, "prepare it")
    prepared.write_record(folder, {"fingerprint": "ab" * 8, "n": 3})
    assert prepared.is_prepared(folder)
    assert prepared.read_record(folder, "") == prepared.recorded(folder) == {"fingerprint": "ab" * 8, "n": 3}
    assert [p.name for p in folder.iterdir()] == ["source.json"]  # no temp file left


def test_arrays_are_written_whole_and_read_back(tmp_path):
    a, b = np.arange(6).reshape(2, 3), np.ones(4, np.float32)
    prepared.write_npz(tmp_path / "d" / "x.npz", {"a": a, "b": b})
    prepared.write_npy(tmp_path / "d" / "y.npy", a)
    npz = np.load(tmp_path / "d" / "x.npz")
    assert (npz["a"] == a).all() and (npz["b"] == b).all() and (np.load(tmp_path / "d" / "y.npy") == a).all()
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["x.npz", "y.npy"]


def test_fingerprints_keep_their_definitions(tmp_path):
    """Run keys hold these values: each definition is pinned against the plain computation it replaced."""
    payload = {"ratio": 0.9, "splits": {"train": [[0, 1, "a"]]}}
    assert prepared.json_fingerprint(payload) == hashlib.sha256(
        json.dumps(payload, sort_keys=True).encode()).hexdigest()
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "b.png").write_bytes(b"12345")
    (tmp_path / "a.txt").write_bytes(b"xy")
    (tmp_path / "meta.json").write_text("{}")
    listing = hashlib.sha256(b"a.txt\t2\nmeta.json\t2\ns/b.png\t5\n").hexdigest()[:16]
    assert prepared.listing_fingerprint(tmp_path) == listing
    digest = hashlib.sha256()
    for name, data in (("a.txt", b"xy"), ("s/b.png", b"12345")):
        digest.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    assert prepared.content_fingerprint(tmp_path, "meta.json") == digest.hexdigest()


def test_another_fingerprint_is_a_clear_error(tmp_path):
    prepared.check_fingerprint(tmp_path, {"fingerprint": "f" * 64}, "", "slices", "fix")  # "" checks nothing
    prepared.check_fingerprint(tmp_path, {"fingerprint": "f" * 64}, "f" * 64, "slices", "fix")
    with pytest.raises(DatasetError, match=r"slices in .*: fingerprint ffffffffffff…, the run expects 000000000000…; fix"):
        prepared.check_fingerprint(tmp_path, {"fingerprint": "f" * 64}, "0" * 64, "slices", "fix")
