"""Reader for the IDX files of MNIST (gzip-compressed or raw)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"


def _bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic number."""
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: cannot be read ({type(e).__name__}: {e})") from e


def read_idx(path: Path) -> np.ndarray:
    """The array stored in an IDX file (gzip-compressed or raw), in native byte order.

    Checks the magic number (two zero bytes, a known type code, the number of dimensions), that the header
    holds every dimension and that the data size matches them; otherwise a ValueError names the file and
    the problem."""
    path = Path(path)
    data = _bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: truncated IDX file ({len(data)} bytes, shorter than the 4-byte magic number)")
    if data[:2] != b"\0\0" or data[2] not in DTYPES or data[3] == 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number 0x{data[:4].hex()})")
    ndim, dtype = data[3], np.dtype(DTYPES[data[2]])
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, {ndim} dimensions need {header})")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    size, expected = len(data) - header, int(np.prod(dims)) * dtype.itemsize
    if size != expected:
        problem = "truncated" if size < expected else "trailing bytes in"
        raise ValueError(f"{path}: {problem} IDX file ({size} bytes of data, header dims {dims} need {expected})")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))
