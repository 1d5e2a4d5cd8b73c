"""TAP Figure 1 (spec §1.3, §8 V1): the PNEU ResNet-18 runs of RRR, RBR and TAP (seed 0) whose input
gradients and stage activations the figure shows, each with the lambda its Figure 6 sweep chose.

Torch-free at import. Two-phase like Figure 6: the ResNet-18 PNEU sweep first, then the chosen-lambda runs
(the same configs as the sweep's seed-0 runs, so they add nothing once the sweep is done)."""

from __future__ import annotations

from repro.papers import Context, PlannedRun, distinct_runs
from repro.papers.tap.xray import chosen_xray_lambdas, plan_xray_sweep, xray_run

DATASET, ARCH, SEED = "pneu", "resnet18", 0  # §1.3 Fig. 1: PNEU, ResNet-18; §8 V1: seed 0
METHODS = ("RRR", "RBR", "TAP")  # the figure's rows, in the paper's order
IMAGES = (0, 1, 5)
"""Rows of the prepared permuted test set (text/test.csv) shown, fixed: two pneumonia images tagged in the
two bottom corners and a normal one tagged top left, in the full preparation of the shared data."""


def figure1_lambdas(ctx: Context) -> dict[str, float | None]:
    """The chosen lambda per method (None until its sweep is done)."""
    return chosen_xray_lambdas(ctx, DATASET, ARCH)


def plan_figure1(ctx: Context) -> list[PlannedRun]:
    """The ResNet-18 PNEU sweep, then RRR, RBR and TAP at their chosen lambdas, seed 0."""
    runs = plan_xray_sweep(ctx, DATASET, (ARCH,))
    runs += [xray_run(ctx, DATASET, ARCH, method, SEED, lam) for method, lam in figure1_lambdas(ctx).items()
             if lam is not None]
    return distinct_runs(runs)
