"""The model of a done run, with its selected or final weights."""

from __future__ import annotations

import torch
from torch import nn

from repro.models import build_model
from repro.runs import record as contract
from repro.runs.store import RunRecord


def load_weights(record: RunRecord, which: str, device: torch.device | str = "cpu") -> nn.Module:
    """The model of a done run with its `best` or `final` weights, in eval mode (built without pretrained
    weights, which the run's own replace: no download needed)."""
    cfg = record.config
    args = {**cfg.model_args, "init": "random"} if "init" in cfg.model_args else cfg.model_args
    model = build_model(cfg.model, **args)
    model.load_state_dict(torch.load(contract.weights_file(record.dir, which), map_location=device, weights_only=True))
    return model.to(device).eval()

