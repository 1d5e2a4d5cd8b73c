"""What every TAP preparation shares (spec §2): a prepared folder is written through a staging folder, so a failure
leaves nothing half-written, and ends with its `meta.json` (the seed, the sources, the counts and a fingerprint of
the files written); the contaminated splits and the val fraction; seeded subsets; the patch and tag box masks."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from repro.papers.tap.data_layout import META
from repro.runs.prepared import content_fingerprint

VAL_FRACTION = 0.1  # MNIST val and the PNEU per-class val (§2.1, §2.2, D-22)
MODES = {"train": ("train", False), "val": ("val", True), "test": ("test", True), "test_cor": ("test", False)}
"""contaminated split -> (source split, permuted), in the order the RNG stream visits them (§2.1-§2.3)."""


def fingerprint(folder: Path) -> str:
    """sha256 over the relative path and content of every file under `folder` but its `meta.json`."""
    return content_fingerprint(folder, META)


@contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """A scratch folder inside `out_dir`; on success its entries replace the same-named ones of `out_dir`
    (meta.json last), on failure it is removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        yield stage
        for entry in sorted(stage.iterdir(), key=lambda p: (p.name == META, p.name)):
            target = out_dir / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_meta(stage: Path, meta: dict) -> None:
    """The stage's meta.json: `meta` and the fingerprint of the files staged."""
    meta = {**meta, "fingerprint": fingerprint(stage)}
    (stage / META).write_text(json.dumps(meta, indent=2) + "\n")


def kept_rows(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Indices kept from a split of n items: all, or a seeded sorted draw of `limit` (tests and demos)."""
    if limit is None or n <= limit:
        return np.arange(n)
    return np.sort(np.random.RandomState(seed).choice(n, limit, replace=False))


def box_masks(tops: np.ndarray, lefts: np.ndarray, box: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """uint8 (N, H, W) masks, 1 on rows [top, top+h) x columns [left, left+w), clipped to the image."""
    rows = np.arange(shape[0])[None, :] - tops[:, None]
    cols = np.arange(shape[1])[None, :] - lefts[:, None]
    in_rows, in_cols = (rows >= 0) & (rows < box[0]), (cols >= 0) & (cols < box[1])
    return (in_rows[:, :, None] & in_cols[:, None, :]).astype(np.uint8)
