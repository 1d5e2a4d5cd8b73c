"""Decoy MNIST tensors for training, from the prepared npz files (TAP spec §2.1).

`repro data prepare tap` writes `original_mnist.npz` (clean) and `decoyed_mnist.npz` (train and test_cor
correlated, val and test permuted, with the 4x4 patch positions) into the prepared folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from repro.data.registry import TrainData, register_dataset

MEAN, STD = 0.1307, 0.3081  # the code's MNIST normalisation (§2.1 loader)
LIMIT_SEED = 0  # the same training subset for every run of a reduced profile


def normalise(x: torch.Tensor) -> torch.Tensor:
    """uint8 [B,1,28,28] -> normalised float, as ToTensor + Normalize."""
    return (x.float() / 255 - MEAN) / STD


def _images(npz: np.lib.npyio.NpzFile, key: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(npz[key])).unsqueeze(1)


@register_dataset("decoy_mnist", member_options=("variant",))  # clean (Base) or contaminated: same sizes
def build_decoy_mnist(seed: int, device: torch.device, prepared: Path, variant: str = "contaminated",
                      fingerprint: str = "", train_limit: int | None = None,
                      eval_limit: int | None = None) -> TrainData:
    """Train on the contaminated (`variant="contaminated"`) or clean (`"clean"`, Base) training split;
    evaluate on the permuted val (`valid`), the permuted test (`test`) and the correlated test (`test_cor`).
    The training mask marks the patch (1 = penalised region); the clean variant has none. `train_limit`
    and `eval_limit` keep a seeded subset of N training images / the first N evaluation images (reduced profiles)."""
    decoy = np.load(prepared / "decoyed_mnist.npz")
    train = decoy if variant == "contaminated" else np.load(prepared / "original_mnist.npz")
    x = _images(train, "train_images")
    y = torch.from_numpy(train["train_labels"].astype(np.int64))
    mask = (_images(decoy, "decoy_positions_train").float() if variant == "contaminated"
            else torch.zeros_like(x, dtype=torch.float32))
    if train_limit:  # a seeded subset in index order: the 5k subset's rows are sorted by class
        keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(LIMIT_SEED))[:train_limit].sort().values
        x, y, mask = x[keep], y[keep], mask[keep]
    evals = {name: (_images(decoy, f"{key}_images")[:eval_limit],
                    torch.from_numpy(decoy[f"{key}_labels"][:eval_limit].astype(np.int64)))
             for name, key in (("valid", "val"), ("test", "test"), ("test_cor", "test_cor"))}
    return TrainData(x.to(device), mask.to(device), y.to(device),
                     {k: (a.to(device), b.to(device)) for k, (a, b) in evals.items()}, transform=normalise)
