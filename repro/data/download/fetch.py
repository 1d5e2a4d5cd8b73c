"""HTTP(S) fetching of one file from a list of mirrors: a `.part` file resumed with a Range request where the server
honours it (a 200 instead of a 206, or a Content-Range that does not start where the part ends, restarts it), an HTML
page refused as a failed mirror, the size and checksum verified before the file is used, and a checksum failure
moving on to the next mirror. Built on urllib (pooch has neither Range resume nor mirror fallback)."""

from __future__ import annotations

import http.client
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from repro.data.download.checksums import Digests, digests
from repro.data.download.entries import Source

TIMEOUT = 30.0  # seconds without a byte before a connection counts as dropped
RETRIES = 3  # resumed attempts on one URL after a dropped connection, as long as each one gains bytes
_CHUNK = 1 << 16
_HTML = (b"<!doctype", b"<html")
_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


class Meter(Protocol):
    """Where the byte counts of a transfer go (a rich progress task, or nothing)."""

    def start(self, label: str, total: int | None, completed: int) -> None: ...

    def advance(self, n: int) -> None: ...


class Refused(Exception):
    """One URL did not give the file (unreachable, an HTTP error, an HTML page, a bad size or checksum)."""


class Unreachable(Exception):
    """No URL of a source gave the file; `failures` says what each did."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures


@dataclass(frozen=True)
class Fetched:
    """A verified file in the staging folder, where it came from, and how many bytes this call transferred."""

    path: Path
    url: str
    digests: Digests
    transferred: int
    size: int


def part_path(staging: Path, source: Source) -> Path:
    return staging / f"{source.file}.part"


def fetch(urls: tuple[str, ...], source: Source, staging: Path, meter: Meter) -> Fetched:
    """`source` fetched into `staging/<file>` from the first of `urls` that gives the right bytes."""
    final = staging / source.file
    if final.is_file():  # fetched and verified by an earlier call that stopped before placing it
        return Fetched(final, "(staged earlier)", verify(final, source), 0, final.stat().st_size)
    staging.mkdir(parents=True, exist_ok=True)
    part, failures = part_path(staging, source), []
    for url in urls:
        try:
            transferred = _fetch_url(url, part, source, meter)
            found = verify(part, source)
        except Refused as e:
            failures.append(f"{url}: {e}")
            continue
        part.replace(final)
        return Fetched(final, url, found, transferred, final.stat().st_size)
    raise Unreachable(failures or ["no URL to fetch it from"])


def verify(path: Path, source: Source) -> Digests:
    """The file's digests if its size and checksum are right; otherwise it is deleted and Refused is raised."""
    size = path.stat().st_size
    if source.size is not None and size != source.size:
        path.unlink()
        raise Refused(f"{size} bytes, the published file has {source.size}")
    found = digests(path)
    if source.pinned and not source.pinned.matches(found):
        path.unlink()
        raise Refused(f"checksum mismatch: expected {source.pinned}, got md5:{found.md5} / sha256:{found.sha256}")
    return found


def _fetch_url(url: str, part: Path, source: Source, meter: Meter) -> int:
    """Fetch `url` into `part`, resuming it; retried while a dropped connection still gained bytes."""
    total = 0
    for _ in range(RETRIES + 1):
        before = part.stat().st_size if part.exists() else 0
        try:
            return total + _transfer(url, part, source, meter)
        except _Dropped as e:
            gained = (part.stat().st_size if part.exists() else 0) - before
            total += max(gained, 0)
            if gained <= 0:
                raise Refused(str(e)) from None
    raise Refused(f"connection dropped {RETRIES + 1} times; the partial file {part} is kept for the next call")


class _Dropped(Exception):
    """The connection broke in the middle of the body; what arrived is kept in the .part file."""


def _transfer(url: str, part: Path, source: Source, meter: Meter) -> int:
    """One GET of `url` appended to `part` (Range) or replacing it; returns the bytes written."""
    offset = part.stat().st_size if part.exists() else 0
    if source.size is not None and offset >= source.size:
        if offset == source.size:
            return 0
        part.unlink()
        offset = 0
    response = _open(url, offset)
    if response.status == 206 and _range_start(response) != offset:  # not the range asked for: fetch it whole
        response.close()
        response = _open(url, 0)
    with response:
        if response.headers.get_content_type() == "text/html":
            raise Refused("served an HTML page (Content-Type text/html), not the file")
        # 206: the rest of the part; 200: the server ignores Range, so the part starts again
        mode, length = ("ab", offset) if response.status == 206 else ("wb", 0)
        size = response.headers.get("Content-Length")
        meter.start(source.file, int(size) + length if size else source.size, length)
        first = _read(response, part)
        if length == 0 and first.lstrip()[:9].lower().startswith(_HTML):
            raise Refused("served an HTML page instead of the file")
        written = 0
        with part.open(mode) as f:
            while first:
                f.write(first)
                written += len(first)
                meter.advance(len(first))
                first = _read(response, part)
    if size and written < int(size):  # the server closed the connection early without an error
        raise _Dropped(f"connection closed after {length + written} bytes; the partial file {part} is kept")
    return written


def _open(url: str, offset: int) -> http.client.HTTPResponse:
    headers = {"User-Agent": "repro-data-download", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urlopen(Request(url, headers=headers), timeout=TIMEOUT)
    except HTTPError as e:
        e.close()
        if e.code == 416 and offset:  # the part is not a prefix of this file: fetch it whole
            return _open(url, 0)
        raise Refused(f"HTTP {e.code} {e.reason}") from None
    except (URLError, OSError, http.client.HTTPException, ValueError) as e:
        raise Refused(f"unreachable ({getattr(e, 'reason', e)})") from None


def _range_start(response: http.client.HTTPResponse) -> int | None:
    match = _RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    return int(match.group(1)) if match else None


def _read(response: http.client.HTTPResponse, part: Path) -> bytes:
    try:
        return response.read(_CHUNK)
    except (OSError, socket.timeout, http.client.HTTPException) as e:
        raise _Dropped(f"connection dropped ({type(e).__name__}); the partial file {part} is kept") from None
