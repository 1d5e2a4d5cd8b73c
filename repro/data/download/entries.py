"""What the catalogue is made of: an `Entry` (one dataset of `repro data check`, or one pretrained weight file) and
its `Source`s (the files to fetch, each with mirrors, checksum and how it is laid out), the access kind of each, and
where an entry lives. A dataset's folder and its verification are `repro.data.catalog`'s (`DatasetSpec.relpath`,
`DatasetSpec.check`): the catalogue names the dataset and never repeats its layout."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from repro.data.catalog import DatasetSpec, dataset
from repro.data.download.checksums import Checksum
from repro.errors import UserError

Kind = Literal["http", "fragile", "kaggle", "manual"]
KINDS: dict[Kind, str] = {  # from the easiest to the hardest, as `--list` shows them
    "http": "direct HTTP",
    "fragile": "fragile host (Google Drive / Dropbox)",
    "kaggle": "Kaggle (API token)",
    "manual": "registration or very large",
}
FRAGILE_HOSTS = ("drive.google.com", "drive.usercontent.google.com", "www.dropbox.com", "dl.dropboxusercontent.com")
MIRROR_ENV = "REPRO_DOWNLOAD_MIRROR"
LARGE = 20 * 2**30  # an entry above this size is fetched only with --large
WeightDir = Literal["hub", "repro-weights", "data-root"]


@dataclass(frozen=True)
class Source:
    """One file of an entry: where it is published, how to check it, and how it becomes part of the layout.

    `dest` is the path under the entry's folder that the file (unpack "file") or the archive's `member` folder
    ("" = the whole archive, None = its single top-level folder, whatever its name) becomes.
    `files` is the number of regular files under `member` in the official archive, where known."""

    file: str
    urls: tuple[str, ...] = ()
    checksum: str | None = None  # None: unpinned (the sha256 of what was fetched is recorded in the marker)
    size: int | None = None  # exact bytes, checked before use; None where not published
    approx: int | None = None  # bytes, for display only, where the exact size is not published
    unpack: Literal["file", "archive"] = "file"  # archive: tar (any compression) or zip, told by its content
    dest: str = ""
    member: str | None = ""
    files: int | None = None
    kaggle: str | None = None  # "datasets/<owner>/<slug>" or "competitions/<competition>/<file>"
    drive_id: str | None = None  # a Google Drive file id (gdown, when installed, retries a refused Drive URL)

    def __post_init__(self) -> None:
        if self.checksum is not None:
            Checksum.parse(self.checksum)

    @property
    def kind(self) -> Kind:
        if self.kaggle:
            return "kaggle"
        if not self.urls:
            return "manual"
        return "fragile" if any(urlsplit(u).hostname in FRAGILE_HOSTS for u in self.urls) else "http"

    @property
    def pinned(self) -> Checksum | None:
        return Checksum.parse(self.checksum) if self.checksum else None

    @property
    def nbytes(self) -> int | None:
        return self.size or self.approx


@dataclass(frozen=True)
class Entry:
    """One dataset of `repro data check` (`name` is its DatasetSpec name) or one weight file (`weights` set)."""

    name: str
    sources: tuple[Source, ...]
    manual: str = ""  # the step a user takes by hand when a source cannot be fetched (default: the DatasetSpec's)
    weights: WeightDir | None = None
    weight_papers: tuple[str, ...] = ()

    @property
    def spec(self) -> DatasetSpec | None:
        return None if self.weights else dataset(self.name)

    @property
    def papers(self) -> tuple[str, ...]:
        return self.weight_papers if self.weights else dataset(self.name).papers

    @property
    def how(self) -> str:
        """The manual step: the entry's own, else `repro data check`'s how-to-obtain hint."""
        return self.manual or (dataset(self.name).obtain if not self.weights else f"download {self.sources[0].urls[0]}")

    @property
    def kind(self) -> Kind:
        """The hardest access kind among the sources."""
        order = list(KINDS)
        return max((s.kind for s in self.sources), key=order.index, default="manual")

    @property
    def nbytes(self) -> int | None:
        sizes = [s.nbytes for s in self.sources]
        return sum(sizes) if sizes and None not in sizes else None

    @property
    def large(self) -> bool:
        return (self.nbytes or 0) > LARGE

    def folder(self, data_root: Path | None) -> Path:
        """Where the entry lives: the dataset's folder under the data root, or the folder its loader reads."""
        if self.weights == "hub" or (self.weights == "repro-weights" and not os.environ.get("REPRO_WEIGHTS")):
            import torch.hub

            return Path(torch.hub.get_dir()) / "checkpoints"
        if self.weights == "repro-weights":
            return Path(os.environ["REPRO_WEIGHTS"])
        if data_root is None:
            raise UserError(f"{self.name} goes under the data root: pass --data-root DIR or set REPRO_DATA")
        return Path(data_root) / ("models" if self.weights == "data-root" else dataset(self.name).relpath)

    def target(self, source: Source, data_root: Path | None) -> Path:
        """The file or folder `source` becomes."""
        return self.folder(data_root) / source.dest if source.dest else self.folder(data_root)


def mirrors() -> tuple[str, ...]:
    """The base URLs of $REPRO_DOWNLOAD_MIRROR (whitespace-separated), tried in order instead of the catalogue's
    hosts: a cluster-local copy (or a test server) laid out as <base>/<entry>/<file>."""
    return tuple(u.rstrip("/") for u in os.environ.get(MIRROR_ENV, "").split())


def urls(entry: Entry, source: Source) -> tuple[str, ...]:
    """The URLs to try for `source`, in order: the mirrors' when $REPRO_DOWNLOAD_MIRROR is set, else the catalogue's."""
    bases = mirrors()
    return tuple(f"{b}/{entry.name}/{source.file}" for b in bases) if bases else source.urls
