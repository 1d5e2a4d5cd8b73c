"""MaskTune in `repro bench` (`repro.bench`): Figure 2's ERM / finetune step (SmallCNN, biased MNIST)."""

from __future__ import annotations

from repro.bench import Case, train_steps
from repro.papers.masktune.plans import RECIPES


def bench_cases(members: int) -> list[Case]:
    """Figure 2's runs, `members` seeds of ERM, RandMask and MaskTune: one by one (two-stage runs)."""
    mt = RECIPES["biased_mnist"]
    return [
        Case("masktune figure2", "ERM / finetune (SmallCNN)", mt["model"], ({},) * (3 * members),
             mt["batch_size"], (3, 28, 28), train_steps(48_000, mt["batch_size"], mt["epochs"] + 1), mt["lr"],
             {**mt["optimizer"], "weight_decay": mt["weight_decay"]}, {"num_classes": 2}, packed_in_pipeline=False)]
