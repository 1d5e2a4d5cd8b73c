"""The MSD training augmentation on the device (actdiff spec §6.4, §13.2): per sample, a random size x size crop
of the stored (larger) image and mask at the same offsets, then a horizontal and a vertical flip, each with
p = 0.5, independently. Valid and test are never augmented."""

from __future__ import annotations

import torch
from torch import Tensor

FLIP_P = 0.5


class CropFlip:
    """(x, mask) (B, 1, S, S) -> both cropped to `size` at one offset per sample and flipped alike. The draws
    come from each member's generator for its rows (a pack's rows are its members' batches in order), so a run
    augments identically alone or packed."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, x: Tensor, mask: Tensor, generators: list[torch.Generator]) -> tuple[Tensor, Tensor]:
        rows, cols = zip(*(self.indices(len(chunk), x.shape[-1], g)
                           for chunk, g in zip(x.chunk(len(generators)), generators)))
        r, c = torch.cat(rows).to(x.device), torch.cat(cols).to(x.device)
        b = torch.arange(len(x), device=x.device)[:, None, None]
        return tuple(t[b, 0, r[:, :, None], c[:, None, :]].unsqueeze(1) for t in (x, mask))

    def indices(self, n: int, side: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """Per sample, the source rows and columns (n, size): top / left offset uniform in [0, side - size],
        each reversed by its flip (vertical for rows, horizontal for columns)."""
        dev, span = gen.device, side - self.size + 1
        top = torch.randint(span, (n,), generator=gen, device=dev)
        left = torch.randint(span, (n,), generator=gen, device=dev)
        hflip = torch.rand(n, generator=gen, device=dev) < FLIP_P
        vflip = torch.rand(n, generator=gen, device=dev) < FLIP_P
        ar = torch.arange(self.size, device=dev)
        rows, cols = top[:, None] + ar, left[:, None] + ar
        return torch.where(vflip[:, None], rows.flip(1), rows), torch.where(hflip[:, None], cols.flip(1), cols)
