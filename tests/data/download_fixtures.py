"""Helpers for the `repro data download` tests: a threaded HTTP server on 127.0.0.1 (Range support switchable, a
connection dropped mid-file, HTML pages, throttled bodies), archives in the official formats, and the catalogue's
checksums replaced by those of the fixtures (`pin`). Run as a module it is the `repro` CLI with the pins of
$REPRO_TEST_PINS applied (the kill -9 test runs it as a subprocess)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import socket
import struct
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

HTML = b"<!DOCTYPE html><html><body>Google Drive - Virus scan warning</body></html>"


class FileServer:
    """Serves `files` (URL path -> bytes) on 127.0.0.1; records every request as (path, Range header)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.html: set[str] = set()  # paths answered with an HTML page (Content-Type text/html)
        self.range_ok = True
        self.drop_after: dict[str, int] = {}  # path -> bytes sent before the connection is cut (once)
        self.delay = 0.0  # seconds per 16 KiB chunk
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                if self.path in server.html:
                    return self._reply(200, HTML, "text/html; charset=utf-8")
                body = server.files.get(self.path)
                if body is None:
                    return self._reply(404, b"not found", "text/plain")
                start = 0
                rng = self.headers.get("Range")
                if rng and server.range_ok:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                cut = server.drop_after.pop(self.path, None)
                payload = body[start:] if cut is None else body[start:cut]
                for i in range(0, len(payload), 1 << 14):
                    self.wfile.write(payload[i:i + (1 << 14)])
                    time.sleep(server.delay)
                if cut is not None:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)

            def _reply(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, base: str, entry: str, files: dict[str, bytes]) -> None:
        """Lay `files` out as a mirror does: <base>/<entry>/<file>."""
        for name, body in files.items():
            self.files[f"/{base}/{entry}/{name}"] = body

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- files in the official formats ---------------------------------------------------------------------------


def idx_gz(array: np.ndarray) -> bytes:
    """An IDX file (uint8), gzipped with mtime 0 as the official MNIST files are."""
    header = bytes((0, 0, 8, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=1, mtime=0)


def mnist_files(n_train: int = 60_000, n_test: int = 10_000, noise: bool = False) -> dict[str, bytes]:
    """The four MNIST .gz files: digits drawn as a bright bar whose position is the label (random pixels when
    `noise`, so the file does not compress and is slow to serve)."""
    def images(n: int) -> np.ndarray:
        if noise:
            return np.random.default_rng(n).integers(0, 256, (n, 28, 28))
        x = np.zeros((n, 28, 28), np.uint8)
        x[np.arange(n), 4 + 2 * (np.arange(n) % 10), 4:24] = 255
        return x

    return {"train-images-idx3-ubyte.gz": idx_gz(images(n_train)),
            "train-labels-idx1-ubyte.gz": idx_gz(np.arange(n_train) % 10),
            "t10k-images-idx3-ubyte.gz": idx_gz(images(n_test)),
            "t10k-labels-idx1-ubyte.gz": idx_gz(np.arange(n_test) % 10)}


def tar_gz(folder: Path, arcname: str, extra: dict[str, bytes] | None = None) -> bytes:
    """`folder` as a .tar.gz under `arcname`, plus `extra` members (name -> bytes; names are not checked)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as t:
        t.add(folder, arcname)
        for name, body in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    return out.getvalue()


def zip_of(folder: Path, arcname: str) -> bytes:
    """`folder` as a zip whose members start with `arcname/` ("" for the folder's content at the top)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, str(Path(arcname) / path.relative_to(folder)))
    return out.getvalue()


# --- the catalogue, pinned to the fixtures ---------------------------------------------------------------------


def pins(files: dict[str, dict[str, bytes]], counts: dict[str, int] | None = None) -> dict:
    """{entry: {file: [sha256 checksum, size, file count or None]}} for the fixture bytes of each entry's files."""
    return {entry: {name: [f"sha256:{hashlib.sha256(body).hexdigest()}", len(body), (counts or {}).get(name)]
                    for name, body in by_file.items()} for entry, by_file in files.items()}


def pinned_entries(pinned: dict) -> tuple:
    """The catalogue with the pinned entries' sources checked against the fixtures instead of the real files."""
    from repro.data.download import catalogue

    def source(entry: str, s):
        checksum, size, files = pinned[entry].get(s.file, (s.checksum, s.size, s.files))
        return dataclasses.replace(s, checksum=checksum, size=size, files=files)

    return tuple(dataclasses.replace(e, sources=tuple(source(e.name, s) for s in e.sources)) if e.name in pinned
                 else e for e in catalogue.ENTRIES)


def apply(pinned: dict, setattr=setattr) -> None:
    """Replace the catalogue's entries by `pinned_entries` (pass monkeypatch.setattr to undo it after a test)."""
    from repro.data.download import catalogue

    entries = pinned_entries(pinned)
    setattr(catalogue, "ENTRIES", entries)
    setattr(catalogue, "_BY_NAME", {e.name: e for e in entries})


if __name__ == "__main__":
    apply(json.loads(Path(os.environ["REPRO_TEST_PINS"]).read_text()))
    from repro.cli import app

    app()
