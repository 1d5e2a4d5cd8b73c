"""Checks shared by the file-backed MaskTune loaders (CelebA, Waterbirds, IN-9; specs/masktune.md §2.2-2.4).

Every failure is a `DatasetError` naming the dataset, the problem and the path looked at, the expected layout
and how to obtain the data (DESIGN.md, "Missing or bad data is a clear message").
"""

from __future__ import annotations

import os
import posixpath
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from repro.data.image_sets import DatasetError, ImageSplit

SPLITS = ("train", "val", "test")  # the split codes 0 / 1 / 2 of the CelebA and Waterbirds CSVs
SHOW = 5  # offending items named in an error message


@dataclass(frozen=True)
class Source:
    """A dataset as the user must supply it: its name, expected on-disk layout and where to get it."""

    name: str
    layout: str
    obtain: str

    def error(self, problem: str) -> DatasetError:
        return DatasetError(f"{self.name}: {problem}. Expected layout: {self.layout}. To obtain it: {self.obtain}")

    def read_csv(self, path: Path, columns: Sequence[str], text: str) -> pd.DataFrame:
        """The CSV at `path`, which must hold `columns`; column `text` (the file names) is read as strings."""
        if not path.is_file():
            raise self.error(f"{path} is missing")
        try:
            frame = pd.read_csv(path, dtype={text: str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise self.error(f"{path} is not a readable CSV ({e})") from e
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise self.error(f"{path} lacks the column(s) {', '.join(missing)} "
                             f"(it has {', '.join(map(str, frame.columns))})")
        if frame[text].isna().any():
            raise self.error(f"{path}: column {text} has empty cells")
        return frame

    def codes(self, frame: pd.DataFrame, column: str, mapping: dict[int, int], path: Path) -> np.ndarray:
        """`frame[column]` mapped through `mapping` to int64; any value outside it is an error."""
        bad = frame.loc[~frame[column].isin(list(mapping)), column]
        if len(bad):
            raise self.error(f"{path}: column {column} must be one of {sorted(mapping)}, found "
                             f"{', '.join(map(str, bad.unique()[:SHOW]))} in {len(bad)} row(s)")
        return frame[column].map(mapping).to_numpy(np.int64)

    def unique(self, values: Sequence[str], column: str, path: Path) -> None:
        """Each value of `column` occurs once."""
        repeated = [v for v, n in Counter(values).items() if n > 1]
        if repeated:
            raise self.error(f"{path}: {len(repeated)} {column} value(s) occur more than once, e.g. "
                             f"{', '.join(repeated[:SHOW])}")

    def existing_files(self, folder: Path, relpaths: Sequence[str], listed_in: Path) -> list[Path]:
        """`folder / relpath` for each relpath ("/"-separated), after checking every file is there (one listing
        per folder)."""
        listings = {d: _file_names(folder / d) for d in {posixpath.dirname(r) for r in relpaths}}
        missing = [r for r in relpaths if posixpath.basename(r) not in listings[posixpath.dirname(r)]]
        if missing:
            raise self.error(f"{len(missing)} of the {len(relpaths)} images listed in {listed_in} are missing "
                             f"under {folder}, e.g. {', '.join(missing[:SHOW])}")
        return [folder / r for r in relpaths]


def _file_names(folder: Path) -> set[str]:
    """The names of the files in `folder`; none when it does not exist."""
    return {e.name for e in os.scandir(folder) if e.is_file()} if folder.is_dir() else set()


def flat_name(relpath: str) -> str:
    """A relative path as one file name ("a/b.jpg" -> "a__b.jpg"), for masked copies saved flat per label."""
    return relpath.replace("/", "__")


def coded_splits(split: np.ndarray, labels: np.ndarray, groups: np.ndarray, names: Sequence[str], files: Sequence[Path],
                 group_names: Sequence[str]) -> tuple[dict[str, ImageSplit], dict[str, dict[str, int]]]:
    """train / val / test from per-image split codes 0 / 1 / 2, and each split's count per group.

    Only "test" carries `groups` (the leakage guard, spec §7.9); the counts of the other splits are facts for
    `details`, out of reach of training, selection and masking.
    """
    splits, counts = {}, {}
    for code, name in enumerate(SPLITS):
        idx = np.flatnonzero(split == code)
        splits[name] = ImageSplit(labels[idx], [names[i] for i in idx], files=[files[i] for i in idx],
                                  groups=groups[idx] if name == "test" else None)
        per_group = np.bincount(groups[idx], minlength=len(group_names))
        counts[name] = {g: int(n) for g, n in zip(group_names, per_group)}
    return splits, counts
