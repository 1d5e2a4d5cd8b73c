"""Group accuracies for CelebA and Waterbirds (specs/masktune.md §6.1, D-15, D-16), in %."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from repro.metrics import batch_mean


def group_accuracies(pred: Tensor, labels: Tensor, groups: Tensor, n_groups: int = 4) -> dict[str, object]:
    """Per-group accuracy (NaN for an empty group) and size, worst group (min over groups with n > 0) and the
    average accuracy = plain test accuracy (D-15)."""
    correct = (torch.as_tensor(pred) == torch.as_tensor(labels)).double()
    groups = torch.as_tensor(groups)
    n_g = [int((groups == g).sum()) for g in range(n_groups)]
    acc_g = [100 * correct[groups == g].mean().item() if n else math.nan for g, n in enumerate(n_g)]
    worst = min((a for a, n in zip(acc_g, n_g) if n), default=math.nan)
    return {"group_acc": acc_g, "group_n": n_g, "worst_group_acc": worst, "average_acc": 100 * correct.mean().item()}


def weighted_average(acc_g: list[float], train_group_fraction: list[float]) -> float:
    """Group accuracies weighted by the train group proportions (Sagawa et al. / JTT "average"; D-15 extra).
    The proportions may be counts; they are normalised. Groups absent from train weigh 0 (even with NaN accuracy)."""
    total = sum(train_group_fraction)
    return sum(a * f for a, f in zip(acc_g, train_group_fraction, strict=True) if f) / total


def per_batch_accuracy(pred: Tensor, labels: Tensor, batch_size: int) -> float:
    """The code's accuracy: the mean over consecutive batches of each batch's accuracy (D-16)."""
    return 100 * batch_mean(lambda p, y: (p == y).double().mean().item(), torch.as_tensor(pred),
                            torch.as_tensor(labels), batch_size)
