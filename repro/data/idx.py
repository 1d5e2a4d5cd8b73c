"""Reader for the IDX files of MNIST (gzip-compressed or raw)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """The array of an IDX file; a ValueError names the file and the problem when it is not valid IDX."""
    path = Path(path)
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot be read as {'gzip' if path.suffix == '.gz' else 'IDX'} ({e})") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(DTYPES[data[2]])
    body = data[4 + 4 * ndim:]
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(body) != expected:
        raise ValueError(f"{path}: truncated or padded IDX file ({len(body)} bytes of data, header says {expected})")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))
