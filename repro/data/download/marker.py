"""The marker beside each downloaded dataset or weight file (`<name>.repro-download.json`): per source file, the URL
it came from, the pinned checksum (or "unpinned"), the sha256 of what was fetched, the bytes, the files placed, the
date and the repro version. Written atomically after each source is placed."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from repro.data.download.entries import Entry, Source
from repro.data.download.fetch import Fetched
from repro.runs.store import atomic_write_json

SUFFIX = ".repro-download.json"


def marker_path(entry: Entry, data_root: Path | None) -> Path:
    """Beside the dataset folder, or beside the weight file."""
    where = entry.target(entry.sources[0], data_root) if entry.weights else entry.folder(data_root)
    return where.with_name(where.name + SUFFIX)


def read(entry: Entry, data_root: Path | None) -> dict[str, dict]:
    """The recorded sources of `entry` by file name ({} when there is no marker)."""
    path = marker_path(entry, data_root)
    try:
        return json.loads(path.read_text())["sources"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return {}


def record(entry: Entry, source: Source, fetched: Fetched, files: int, data_root: Path | None) -> None:
    """Add one placed source to the entry's marker."""
    path = marker_path(entry, data_root)
    sources = read(entry, data_root)
    sources[source.file] = {
        "url": fetched.url, "checksum": source.checksum or "unpinned", "sha256": fetched.digests.sha256,
        "bytes": fetched.size, "files": files,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(path, {"entry": entry.name, "repro": version("repro"), "sources": sources})
