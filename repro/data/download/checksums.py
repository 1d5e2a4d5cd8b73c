"""Checksums as the well-known loaders publish them: "md5:<hex>", "sha256:<hex>", or "sha256-prefix:<hex>" (the
leading hex digits that torch.hub puts into a weight file's name, e.g. resnet18-f37072fd.pth)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

ALGORITHMS = ("md5", "sha256", "sha256-prefix")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Checksum:
    """A published checksum: algorithm and (lower-case hex) value."""

    algorithm: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Checksum:
        """'md5:abc...' -> Checksum('md5', 'abc...')."""
        algorithm, sep, value = text.partition(":")
        if not sep or algorithm not in ALGORITHMS or not value or any(c not in "0123456789abcdef" for c in value):
            raise ValueError(f"checksum {text!r} is not <{'|'.join(ALGORITHMS)}>:<lower-case hex>")
        return cls(algorithm, value)

    def matches(self, digests: Digests) -> bool:
        """Whether the digests of a file agree with this checksum."""
        if self.algorithm == "md5":
            return digests.md5 == self.value
        if self.algorithm == "sha256":
            return digests.sha256 == self.value
        return digests.sha256.startswith(self.value)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value}"


@dataclass(frozen=True)
class Digests:
    """The md5 and sha256 of one file (both computed in one pass)."""

    md5: str
    sha256: str


def digests(path: Path) -> Digests:
    """md5 and sha256 of the file at `path`, read once in 1 MiB chunks."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            md5.update(chunk)
            sha.update(chunk)
    return Digests(md5.hexdigest(), sha.hexdigest())
