"""The `cross` dataset: a benchmark's home dataset (decoy MNIST, synth2, TAP's PNEU and KNEE) with the mask a
foreign method family needs (`repro.papers.cross.masks`), and for Classify Masked its training images kept inside
that mask. Home cells never come here: they train on the home dataset itself, under the paper artefact's run key."""

from __future__ import annotations

from typing import Any

import torch

from repro.data.registry import DATASETS, TrainData, register_dataset
from repro.papers.cross.masks import avoid_from_look, digit_look, keep_look, tag_band_look

# home dataset -> the name of a mask a foreign method family sees -> its derivation (images, home annotation); a
# foreign method of the home annotation's convention sees the annotation itself (synth2's ROI for cfaug's methods)
DERIVED = {
    "decoy_mnist": {"digit": digit_look},
    "synthetic": {"not_roi": lambda x, m: avoid_from_look(m), "roi": lambda x, m: m},
    **{xray: {"tag_band": lambda x, m: tag_band_look(m)} for xray in ("pneu", "knee")},
}


@register_dataset("cross")
def build_cross(seed: int, device: torch.device, home: str, mask: str, masked_inputs: bool = False,
                **home_args: Any) -> TrainData:
    """The `home` dataset built with `home_args`; its training mask replaced by the derivation `mask` (a key of
    `DERIVED[home]`); with `masked_inputs`, the training images outside that mask set to 0 (Classify Masked)."""
    if mask not in DERIVED.get(home, {}):
        known = "; ".join(f"{h}: {', '.join(masks)}" for h, masks in DERIVED.items())
        raise ValueError(f"cross: no mask {mask!r} for the home dataset {home!r}; known: {known}")
    data = DATASETS[home](seed=seed, device=device, **home_args)
    data.mask = DERIVED[home][mask](data.x, data.mask)
    if masked_inputs:
        data.x = keep_look(data.x, data.mask)
        if "train" in data.evals:  # the training split as evaluated: as it was trained on (actdiff's Classify Masked)
            data.evals["train"] = (data.x, data.y)
    return data
