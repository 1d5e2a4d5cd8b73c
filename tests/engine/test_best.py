"""Engine pieces: best-epoch rule (strict >, 0-based, earliest among ties) and device selection."""

from __future__ import annotations

import pytest
import torch

from repro.errors import UserError
from repro.engine import Best
from repro.seeding import resolve_device


def test_best_epoch_keeps_the_earliest_of_ties():
    net = torch.nn.Linear(1, 1)
    best = Best("valid", "accuracy")
    for epoch, v in enumerate([0.5, 0.7, 0.7, 0.6, 0.7]):
        with torch.no_grad():
            net.weight.fill_(epoch)
        metrics = {"valid": {"accuracy": v}, "train": {"accuracy": 1.0}}
        if best.selects(metrics, last=epoch == 4):
            best.update(epoch, metrics, net.state_dict())
    assert best.epoch == 1 and best.value == 0.7
    assert best.state["weight"].item() == 1.0  # the weights of that epoch, not later ones


def test_final_selection_takes_the_last_epoch():
    best = Best.from_selection("final")
    assert not best.selects({"valid": {"accuracy": 1.0}}, last=False)
    assert best.selects({"valid": {"accuracy": 0.0}}, last=True)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match="--device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda:0")
