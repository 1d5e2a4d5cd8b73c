"""The terms cfaug's objective composes (spec §5.1), one file and one registry entry each (`repro.methods`,
`register_method("cfaug.<name>")`; a run names the paper's by its settings, `CfaugMethod.term_specs`, others in
`method_args["terms"]`). An entry is built as `entry(method, **args)` with the run's `CfaugMethod`.

Three kinds, by how they enter the loss:
- `Augmentation` (CF, F): images made from the batch's eligible originals (the has_bbox rows), forwarded with
  them, and a loss summed over its images; normalised with the originals' CE by `loss_norm` (C-4).
- `Regulariser` (Sal): a weighted term of the originals; one may give the originals' logits from a forward of its
  own (`own_forward`), which then is the forward their CE uses (§5.5).
- `WholeLoss` (Mixup, LS): the whole loss of the batch, alone (the baselines combine with no other term, §5.6).
"""

from __future__ import annotations

from functools import cached_property
from typing import Mapping

import torch
from torch import Tensor, nn

from repro.papers.cfaug.settings import CfaugMethod


class TermBatch:
    """One training batch as the terms see it: the model, the batch (a dict on the device), the run's generator,
    the originals' logits once the objective has them (`logits`), and values a term keeps between its hooks."""

    def __init__(self, model: nn.Module, batch: Mapping[str, Tensor], gen: torch.Generator):
        self.model, self.batch, self.gen = model, batch, gen
        self.x, self.y = batch["x"], batch["y"]
        self.logits: Tensor | None = None
        self.kept: dict[str, Tensor] = {}

    @property
    def mask(self) -> Tensor:
        return self.batch["mask"]

    @cached_property
    def has_bbox(self) -> Tensor:
        return self.batch["has_bbox"].bool()

    @cached_property
    def eligible(self) -> Tensor:
        """Indices of the rows augmentations are made from: those with a mask (C-15)."""
        return self.has_bbox.nonzero(as_tuple=True)[0]


class Term:
    """Base of every term: built from the run's settings (and the arguments a run config gives it)."""

    def __init__(self, method: CfaugMethod):
        self.method = method


class Augmentation(Term):
    """Images made from the eligible originals and their loss. `labelled`: the images carry their originals'
    class (F): under joint normalisation their summed loss joins the originals' CE (spec §5.1's set P)."""

    part = ""
    labelled = False

    def images(self, tb: TermBatch) -> Tensor:
        """The images, one per eligible row (made in the objective's term order from the same originals)."""
        raise NotImplementedError

    def loss_sum(self, logits: Tensor, y: Tensor) -> Tensor:
        """The loss summed over the images, from their logits and their originals' labels (float32)."""
        raise NotImplementedError


class Regulariser(Term):
    """A weighted term of the originals, its part of the loss (`__call__`, after the forward)."""

    part = ""
    own_forward = False

    def forward(self, tb: TermBatch) -> Tensor:
        """With `own_forward`: the originals' logits from the term's forward (after the augmentations' images
        are made); the other images are then forwarded apart."""
        raise NotImplementedError

    def __call__(self, tb: TermBatch) -> Tensor:
        raise NotImplementedError


class WholeLoss(Term):
    """The batch's whole loss (part "ce")."""

    def __call__(self, tb: TermBatch) -> Tensor:
        raise NotImplementedError
