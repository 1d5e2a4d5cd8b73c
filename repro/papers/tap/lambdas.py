"""TAP's lambda sweeps (T1) across its datasets: decoy MNIST, then PNEU and KNEE where they are prepared."""

from __future__ import annotations

from repro.papers import Context, PlannedRun
from repro.papers.tap import xray
from repro.papers.tap.mnist import MNIST, chosen_lambdas, mnist_sweep


def plan_sweep(ctx: Context) -> list[PlannedRun]:
    """Every lambda sweep (T1): decoy MNIST, then PNEU and KNEE where they are prepared for training."""
    return mnist_sweep(ctx) + [run for dataset in xray.SETTINGS if xray.trainable(ctx, dataset)
                               for run in xray.plan_xray_sweep(ctx, dataset)]


def all_chosen_lambdas(ctx: Context) -> dict[tuple[str, str], dict[str, float | None]]:
    """The chosen lambdas of every sweep in `plan_sweep`, by (dataset, arch)."""
    chosen = {("mnist", MNIST["model"]): chosen_lambdas(ctx)}
    for dataset in xray.SETTINGS:
        if xray.trainable(ctx, dataset):
            for arch in xray.setting(ctx, dataset, "archs"):
                chosen[dataset, arch] = xray.chosen_xray_lambdas(ctx, dataset, arch)
    return chosen
