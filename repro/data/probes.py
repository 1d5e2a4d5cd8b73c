"""The quick on-disk checks behind `repro data check`: what a probe reports (`Finding`, or a DatasetError from
`bad_file` for a file that is there but broken), file listings, and format checks that read only headers (IDX,
NIfTI, MAT, npy, CSV headers) and decode only the first and last file of a folder. Each dataset's own probe sits
beside its reader (e.g. `repro.data.celeba.probe`); the table of datasets is `repro.data.catalog`."""

from __future__ import annotations

import csv
import gzip
import os
import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Literal, NamedTuple

from repro.errors import DatasetError

State = Literal["found", "subset", "missing", "corrupt"]

IMAGES = (".jpg", ".jpeg", ".png")


def bad_file(path: Path, problem: str) -> DatasetError:
    """The error for a file that is present but not what it should be (bad header, truncated, undecodable)."""
    return DatasetError(f"{path}: {problem}", path, problem)


class Finding(NamedTuple):
    """What a probe saw inside an existing dataset folder."""

    state: State
    counts: str
    note: str = ""


Probe = Callable[[Path], Finding]


def relative(path: Path, base: Path) -> str:
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


# --- small file helpers ---------------------------------------------------------------------------------


def list_files(folder: Path, suffixes: tuple[str, ...]) -> list[str]:
    """Names of the regular files in `folder` ending in one of `suffixes` (case-insensitive); [] if absent."""
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries
                    if e.name.lower().endswith(suffixes) and not e.name.startswith("._") and e.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def list_subdirs(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return [e.name for e in entries if e.is_dir()]


def nested_files(root: Path, suffixes: tuple[str, ...]) -> set[str]:
    """`<subdir>/<name>` of the files one folder level below `root` (e.g. CUB species folders)."""
    if not root.is_dir():
        return set()
    return {f"{sub}/{name}" for sub in list_subdirs(root) for name in list_files(root / sub, suffixes)}


def verify_file(path: Path, size: tuple[int, ...] | None = None) -> None:
    """Decode an image as the readers do (`to_8bit`), or read an .npy header; `size` is the expected image
    (w, h) or array shape."""
    if path.suffix == ".npy":
        got = npy_shape(path)
    else:
        from PIL import Image

        from repro.data.image_mode import to_8bit

        try:
            with Image.open(path) as image:
                got = to_8bit(image).size
        except (OSError, SyntaxError, ValueError) as err:
            raise bad_file(path, f"cannot be decoded ({err})") from err
    if size is not None and tuple(got) != size:
        raise bad_file(path, f"has size {got}, expected {size}")


def verify_ends(folder: Path, names: list[str], size: tuple[int, ...] | None = None) -> None:
    """Decode the first and the last file (by name) of a folder."""
    for name in sorted({min(names), max(names)}):
        verify_file(folder / name, size)


def npy_shape(path: Path) -> tuple[int, ...]:
    """Shape from an .npy header; the file length must match it."""
    import numpy as np

    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            start = f.tell()
    except (OSError, ValueError) as err:
        raise bad_file(path, f"not an .npy file ({err})") from err
    if path.stat().st_size != start + prod(shape) * dtype.itemsize:
        raise bad_file(path, "truncated (length does not match the .npy header)")
    return shape


def gz_size(path: Path) -> int:
    """Uncompressed size mod 2**32 from the gzip trailer (ISIZE), without decompressing."""
    with path.open("rb") as f:
        f.seek(-4, os.SEEK_END)
        return struct.unpack("<I", f.read(4))[0]


def read_head(path: Path, n: int) -> bytes:
    """The first `n` (uncompressed) bytes of a file, gzip or not."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(n)
    except (OSError, EOFError, zlib.error) as err:
        raise bad_file(path, f"unreadable ({err})") from err
    if len(head) < n:
        raise bad_file(path, "truncated header")
    return head


def check_length(path: Path, expected: int) -> None:
    """Compare the (uncompressed) length announced by a header with the file's real one."""
    stored = gz_size(path) if path.name.endswith(".gz") else path.stat().st_size
    if stored % 2**32 != expected % 2**32:
        raise bad_file(path, f"truncated or corrupt: holds {stored} bytes, its header implies {expected}")


def idx_count(path: Path, item_shape: tuple[int, ...]) -> int:
    """Number of items in an IDX file (.gz or raw) of uint8 items of `item_shape`; checks magic and length."""
    ndim = len(item_shape) + 1
    head = read_head(path, 4 + 4 * ndim)
    if head[:4] != bytes((0, 0, 8, ndim)):
        raise bad_file(path, f"bad IDX magic 0x{head[:4].hex()} (expected 0x000008{ndim:02x})")
    dims = struct.unpack(f">{ndim}I", head[4:])
    if dims[1:] != item_shape:
        raise bad_file(path, f"items of shape {dims[1:]}, expected {item_shape}")
    check_length(path, len(head) + prod(dims))
    return dims[0]


def nifti_check(path: Path) -> None:
    """Read a .nii.gz NIfTI-1 header and compare the data size it implies with the gzip trailer."""
    head = read_head(path, 348)
    order = next((o for o in "<>" if struct.unpack(f"{o}i", head[:4])[0] == 348), None)
    if order is None:
        raise bad_file(path, "not a NIfTI-1 file (sizeof_hdr != 348)")
    dims = struct.unpack(f"{order}8h", head[40:56])
    bitpix = struct.unpack(f"{order}h", head[72:74])[0]
    offset = int(struct.unpack(f"{order}f", head[108:112])[0])
    check_length(path, offset + prod(dims[1 : dims[0] + 1]) * bitpix // 8)


def mat_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Variable shapes of a little-endian MATLAB 5 file (e.g. SVHN), read from the element headers only."""
    size = path.stat().st_size
    shapes = {}
    with path.open("rb") as f:
        head = f.read(128)
        if not head.startswith(b"MATLAB 5.0 MAT-file") or head[126:128] != b"IM":
            raise bad_file(path, "not a little-endian MATLAB 5.0 MAT-file")
        pos = 128
        while pos + 8 <= size:
            f.seek(pos)
            tag = f.read(8)
            kind, nbytes = struct.unpack("<II", tag)
            if pos + 8 + nbytes > size:
                raise bad_file(path, "truncated (a variable runs past the end of the file)")
            body = f.read(min(nbytes, 4096))
            try:
                body = zlib.decompressobj().decompress(body) if kind == 15 else tag + body  # 15 = miCOMPRESSED
                name, shape = _mat_matrix_header(body)
            except (zlib.error, struct.error, ValueError) as err:
                raise bad_file(path, f"unreadable variable header ({err})") from err
            shapes[name] = shape
            pos += 8 + nbytes
    return shapes


def _mat_matrix_header(body: bytes) -> tuple[str, tuple[int, ...]]:
    """(name, dims) of a miMATRIX element: tag, array flags (16 bytes), dims, then the array name."""
    _, dims_bytes = struct.unpack("<II", body[24:32])
    dims = struct.unpack(f"<{dims_bytes // 4}i", body[32 : 32 + dims_bytes])
    pos = 32 + -(-dims_bytes // 8) * 8
    tag = struct.unpack("<I", body[pos : pos + 4])[0]
    if tag >> 16:  # small data element: length in the upper half, data in the next 4 bytes
        name = body[pos + 4 : pos + 4 + (tag >> 16)]
    else:
        length = struct.unpack("<I", body[pos + 4 : pos + 8])[0]
        name = body[pos + 8 : pos + 8 + length]
    return name.decode("ascii"), dims


def require_columns(path: Path, required: Iterable[str]) -> None:
    """The header row of a CSV file must have every `required` column."""
    with path.open(newline="") as f:
        header = next(csv.reader(f), [])
    absent = [c for c in required if c not in header]
    if absent:
        raise bad_file(path, f"lacks column(s) {', '.join(absent)}")


def csv_rows(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    """All rows of a small CSV file whose header has the `required` columns."""
    require_columns(path, required)
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def line_count(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def absent_names(path: Path, names: Iterable[str]) -> list[str]:
    """Those of `names` (files, or folders when ending in '/') that do not exist under `path`."""
    return [n for n in names if not (path / n).exists()]


def state_of(complete: bool) -> State:
    return "found" if complete else "subset"


def split_finding(found: dict[str, int], full: dict[str, int]) -> Finding:
    """Per-split item counts compared with the full dataset's."""
    short = [f"{split} {found[split]} of {n}" for split, n in full.items() if found[split] < n]
    return Finding(state_of(not short), ", ".join(f"{split} {n}" for split, n in found.items()), "; ".join(short))


# --- probes: folder trees of class folders ----------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Folders whose class subfolders are counted together (e.g. Kaggle train + val), with full counts."""

    folders: tuple[str, ...]
    expected: tuple[int, ...] | None = None  # per class; None where the specs give no count
    suffixes: tuple[str, ...] = IMAGES


def class_tree(splits: tuple[Split, ...], classes: tuple[str, ...]) -> Probe:
    """Probe for `<split>/<class>/<file>` layouts; a split with a missing class folder makes it "missing"."""

    def probe(path: Path) -> Finding:
        parts, absent, empty, short, seen = [], [], [], [], []
        for split in splits:
            present = [f for f in split.folders if (path / f).is_dir()]
            if not present:
                absent.append("|".join(f"{f}/" for f in split.folders))
            total = 0
            for folder in present:
                counts = [len(list_files(path / folder / c, split.suffixes)) for c in classes]
                empty += [f"{folder}/{c}/" for c, n in zip(classes, counts, strict=True) if n == 0]
                seen += [(path / folder / c, split.suffixes) for c, n in zip(classes, counts, strict=True) if n]
                total += sum(counts)
                parts.append(f"{folder} {'/'.join(map(str, counts)) if len(classes) <= 5 else sum(counts)}")
            if present and split.expected and total < sum(split.expected):
                short.append(f"{'+'.join(split.folders)} {total} of {sum(split.expected)}")
        counts = ", ".join(parts)
        if empty:
            return Finding("missing", counts, f"class folder(s) missing or empty: {', '.join(empty)}")
        if not seen:
            return Finding("missing", "", f"none of {', '.join(absent)} found")
        for folder, suffixes in (seen[0], seen[-1]):
            verify_ends(folder, list_files(folder, suffixes))
        problems = [f"{label}: {', '.join(items)}" for label, items in (("absent", absent), ("short", short)) if items]
        return Finding(state_of(not problems), counts, "; ".join(problems))

    return probe


def csv_images(table: str, columns: tuple[str, ...], images: str, expected: int | None) -> Probe:
    """Probe for a label CSV plus a flat folder of 128×128 PNGs (NIH ChestX-ray14, PadChest)."""

    def probe(path: Path) -> Finding:
        absent = absent_names(path, (table, f"{images}/"))
        if absent:
            return Finding("missing", "", f"missing {', '.join(absent)}")
        require_columns(path / table, columns)
        rows = line_count(path / table) - 1
        names = list_files(path / images, (".png",))
        counts = f"csv rows {rows}, images {len(names)}"
        if not names:
            return Finding("missing", counts, f"{images}/ holds no .png")
        verify_ends(path / images, names, (128, 128))
        target = expected or rows
        done = len(names) >= target
        return Finding(state_of(done), counts, "" if done else f"{len(names)} of {target} images")

    return probe
