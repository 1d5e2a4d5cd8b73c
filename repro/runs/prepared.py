"""The prepared-data store: data derived from a dataset's raw files (contaminated copies, cached slices, a dataset's
recorded location) lives in `<runs_dir>/prepared/<name>/`, `name` being a paper's folder such as "tap/pneu" or
"cfaug/synthetic-in9". A run names that folder in its data settings (`"prepared": name`) together with the
fingerprint of the data, so run keys depend on the data, not on where it lives. Only this module knows the layout;
writes are atomic (`repro.runs.store.atomic_write`). Torch- and numpy-free at import (plans use it)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from repro.runs.store import RunRecord, atomic_write, atomic_write_json

FOLDER = "prepared"
SOURCE = "source.json"  # the record of a prepared folder (meta.json for TAP's contaminated sets)


def prepared_root(runs_dir: Path) -> Path:
    """The folder holding every prepared folder of a runs dir: a data setting's "prepared" is relative to it."""
    return Path(runs_dir) / FOLDER


def prepared_dir(runs_dir: Path, name: str) -> Path:
    """The prepared folder `name` (e.g. "tap/pneu") of a runs dir."""
    return prepared_root(runs_dir) / name


def runs_dir_of(record: RunRecord) -> Path:
    """The runs dir a run folder (`<runs_dir>/<paper>/<key>`) lies in."""
    return record.dir.parents[1]


def run_prepared_root(record: RunRecord) -> Path:
    """The prepared root of the runs dir a run lies in: where its data settings' "prepared" folder is."""
    return prepared_root(runs_dir_of(record))


def runs_dir_of_prepared(folder: Path, name: str) -> Path:
    """The runs dir of the prepared folder `folder` named `name` (the inverse of `prepared_dir`)."""
    return Path(folder).parents[len(Path(name).parts)]


def read_record(folder: Path, fix: str, file: str = SOURCE) -> dict[str, Any]:
    """The JSON record `file` of a prepared folder; a missing one is a DatasetError naming it and `fix`."""
    from repro.data.image_sets import DatasetError

    path = Path(folder) / file
    if not path.is_file():
        raise DatasetError(f"{path} not found: {fix}")
    return json.loads(path.read_text())


def is_prepared(folder: Path, file: str = SOURCE) -> bool:
    """Whether a prepared folder is complete: its record, written last, is there."""
    return (Path(folder) / file).is_file()


def recorded(folder: Path, file: str = SOURCE) -> dict[str, Any] | None:
    """The JSON record `file` of a prepared folder, or None when the folder is not prepared."""
    return json.loads((Path(folder) / file).read_text()) if is_prepared(folder, file) else None


def write_record(folder: Path, record: dict[str, Any], file: str = SOURCE) -> None:
    """Write a prepared folder's record atomically, last, so its presence means the folder is complete."""
    atomic_write_json(Path(folder) / file, record)


def write_npz(path: Path, arrays: dict[str, Any]) -> None:
    """Write the named arrays as one uncompressed `.npz`, atomically."""
    import numpy as np

    atomic_write(path, lambda f: np.savez(f, **arrays))


def write_npy(path: Path, array: Any) -> None:
    """Write one array as `.npy`, atomically."""
    import numpy as np

    atomic_write(path, lambda f: np.save(f, array))


def json_fingerprint(payload: Any) -> str:
    """sha256 (hex) of the canonical JSON of `payload`: a fingerprint of what was selected."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def listing_fingerprint(folder: Path) -> str:
    """A hash of every file's relative path and size under `folder` (cheap; catches added, removed or re-encoded
    files), 16 hex digits."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            h.update(f"{p.relative_to(folder).as_posix()}\t{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def files_digest(files: dict[str, Path]) -> str:
    """sha256 over (name, sha256 of the file) pairs in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\0{file_sha256(files[name])}\n".encode())
    return h.hexdigest()


def content_fingerprint(folder: Path, skip: str) -> str:
    """sha256 over the relative path and content of every file under `folder` but its record `skip`."""
    folder = Path(folder)
    return files_digest({p.relative_to(folder).as_posix(): p for p in folder.rglob("*")
                         if p.is_file() and p != folder / skip})


def check_fingerprint(folder: Path, record: dict[str, Any], expected: str, what: str, fix: str) -> None:
    """A DatasetError when a run expects another fingerprint (`expected`; "" checks nothing) than the prepared
    folder's record holds."""
    from repro.data.image_sets import DatasetError

    if expected and expected != record["fingerprint"]:
        raise DatasetError(f"{what} in {folder}: fingerprint {record['fingerprint'][:12]}…, the run expects "
                           f"{expected[:12]}…; {fix}")
