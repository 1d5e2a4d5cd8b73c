"""Batches of a MaskTune split as the model sees them.

In-memory splits (MNIST, CIFAR-10, SVHN, Cats vs Dogs) stay uint8 on the training device and are augmented
there in whole batches (`repro.papers.masktune.tensor_augment`); file-backed splits (CelebA, Waterbirds, IN-9L) are
decoded by DataLoader workers with the dataset's PIL transforms, seeded per worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from repro.data.image_sets import ImageSplit
from repro.seeding import seed_worker

IN_MEMORY = ("mnist", "cifar", "svhn", "catsdogs")


class _Files(Dataset):
    def __init__(self, files: list[Path], labels: np.ndarray, transform):
        self.files, self.labels, self.transform = files, labels, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        from repro.data.rgb_image import open_rgb

        return self.transform(open_rgb(self.files[i])), int(self.labels[i])


class Feeder:
    """Train and evaluation batches of one dataset's splits on `device`."""

    def __init__(self, kind: str, device: torch.device, batch_size: int, workers: int = 0):
        self.kind, self.device, self.batch_size, self.workers = kind, device, batch_size, workers
        self._resident: dict[int, Tensor] = {}

    def _on_device(self, split: ImageSplit) -> Tensor:
        key = id(split.images)
        if key not in self._resident:
            self._resident[key] = torch.from_numpy(np.ascontiguousarray(split.images)).to(self.device)
        return self._resident[key]

    def batches(self, split: ImageSplit, mode: str, gen: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        """(x, y) batches: `mode` "train" (shuffled by `gen`, augmented), "eval" or "mask" (in order,
        deterministic transform). The last partial batch is kept."""
        labels = torch.from_numpy(split.labels).to(self.device)
        if self.kind in IN_MEMORY:
            from repro.papers.masktune.tensor_augment import augment, to_float

            images = self._on_device(split)
            order = (torch.randperm(len(split), generator=gen, device=gen.device).to(self.device)
                     if mode == "train" else torch.arange(len(split), device=self.device))
            for i in range(0, len(split), self.batch_size):
                idx = order[i:i + self.batch_size]
                x = augment(self.kind, images[idx], gen) if mode == "train" else to_float(images[idx])
                yield x, labels[idx]
            return
        from repro.papers.masktune.pil_transforms import pil_transforms

        loader = DataLoader(_Files(split.files, split.labels, pil_transforms(self.kind)[mode]),
                            batch_size=self.batch_size, shuffle=mode == "train", num_workers=self.workers,
                            worker_init_fn=seed_worker, pin_memory=self.device.type == "cuda",
                            generator=torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=gen,
                                                                                       device=gen.device))))
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
