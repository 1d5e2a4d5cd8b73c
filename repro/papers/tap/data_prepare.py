"""Derived data of the TAP paper (spec §2): every dataset prepared from the data root into its folder, and the
teacher hold-out split. Decoy MNIST is `repro.papers.tap.data_prepare_decoy`, PNEU and KNEE with text tags
`repro.papers.tap.data_prepare_tagged` (the layout of their folders is there), what they share
`repro.papers.tap.data_staging`."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path

from repro.papers.tap.data_prepare_decoy import prepare_decoy_mnist
from repro.papers.tap.data_prepare_tagged import prepare_knee, prepare_pneu

log = logging.getLogger(__name__)

SOURCES: dict[str, tuple[tuple[str, ...], Callable[..., Path]]] = {
    "decoy_mnist": (("MNIST",), prepare_decoy_mnist),
    "pneu": (("chest_xray", "pneu/chest_xray"), prepare_pneu),
    "knee": (("kneeKL224",), prepare_knee),
}
"""output folder -> (input folders tried under the data root, in order; preparer)."""


def prepare_tap(data_root: Path, out_root: Path, seed: int = 0, limit: int | None = None) -> dict[str, Path]:
    """Prepare each TAP dataset whose input folder is under `data_root` into `out_root/<name>` and return
    {name: folder}; an absent dataset is skipped with a log line, a present one with a bad layout raises
    DatasetError. `limit` is passed on (tests, demos)."""
    data_root, out_root = Path(data_root), Path(out_root)
    prepared = {}
    for name, (folders, prepare) in SOURCES.items():
        found = next((data_root / f for f in folders if (data_root / f).is_dir()), None)
        if found is None:
            log.info("TAP %s skipped: none of %s under %s", name, ", ".join(folders), data_root)
            continue
        prepared[name] = prepare(found, out_root / name, seed=seed, limit=limit)
    return prepared


def teacher_split(n: int, frac: float, seed: int, student_set: str = "remainder") -> tuple[list[int], list[int]]:
    """Row indices of a split of n images for the clean teacher and for the student (§2.4).

    Teacher: `random.Random(seed).sample(range(n), int(n * frac))`, as `pretrain.py --frac` (applied to train,
    val and test alike). Student: the remaining rows in ascending order (`student_set="remainder"`, the paper,
    default per D-10) or all rows (`"full"`, the code). Clean and tagged rows share indices."""
    teacher = random.Random(seed).sample(range(n), int(n * frac))
    if student_set == "full":
        return teacher, list(range(n))
    if student_set != "remainder":
        raise ValueError(f"student_set must be 'remainder' or 'full', not {student_set!r}")
    held = set(teacher)
    return teacher, [i for i in range(n) if i not in held]
