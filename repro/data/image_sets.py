"""Labelled image splits for the MaskTune datasets (specs/masktune.md §2).

A split holds its images in memory as uint8 RGB (small datasets: MNIST, CIFAR-10, SVHN, Cats vs Dogs at
64 px), as original image files (CelebA, Waterbirds, IN-9L), or both (Cats vs Dogs: the files are what
MaskTune masks, the 64 px array is what the model sees). `groups` are read only by the test evaluation,
never by training, model selection or masking (spec §7.9).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from repro.errors import DatasetError  # noqa: F401 (re-exported: the readers import it from here)


@dataclass
class ImageSplit:
    """One split: labels, a unique name per image (the masked copy's file name), and images and/or files."""

    labels: np.ndarray                   # (N,) int64
    names: list[str]                     # unique within the split; masked files keep these names
    images: np.ndarray | None = None     # (N, H, W, 3) uint8, for in-memory datasets
    files: list[Path] | None = None      # the original image files, for file-backed datasets
    groups: np.ndarray | None = None     # (N,) int64 group ids, test evaluation only

    def __post_init__(self) -> None:
        n = len(self.labels)
        if len(self.names) != n or (self.images is not None and len(self.images) != n) \
                or (self.files is not None and len(self.files) != n) or (self.groups is not None and len(self.groups) != n):
            raise ValueError("ImageSplit: labels, names, images, files and groups must have one entry per image")
        if self.images is None and self.files is None:
            raise ValueError("ImageSplit: needs images or files")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> ImageSplit:
        """The images at positions `idx`, in that order."""
        idx = np.asarray(idx, dtype=np.int64)
        return ImageSplit(self.labels[idx], [self.names[i] for i in idx],
                          None if self.images is None else self.images[idx],
                          None if self.files is None else [self.files[i] for i in idx],
                          None if self.groups is None else self.groups[idx])


@dataclass
class ImageDataset:
    """A dataset's splits: `train`, `val` and one or more test sets (`test`, or `test_<variant>`).

    `transforms` names the dataset's transform family, which the paper training on it maps to its transforms;
    `details` holds facts worth recording in provenance (source layout, split files used, counts).
    """

    name: str
    num_classes: int
    splits: dict[str, ImageSplit]
    transforms: str
    details: dict[str, object] = field(default_factory=dict)

    @property
    def tests(self) -> list[str]:
        return [k for k in self.splits if k.startswith("test")]

    def fingerprint(self) -> str:
        """Hash of every split's names and labels (the split lists, spec §7.10)."""
        h = hashlib.sha256(self.name.encode())
        for k in sorted(self.splits):
            s = self.splits[k]
            h.update(k.encode())
            h.update("\n".join(s.names).encode())
            h.update(np.ascontiguousarray(s.labels, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]
