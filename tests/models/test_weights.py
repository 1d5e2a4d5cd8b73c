"""The one path for pretrained weights (`repro.models.weights`): the three papers' loaders fetch through the
download catalogue, and a file that cannot be fetched is one paragraph (URL, target, manual step, fallback), exit 2,
with nothing half-written. Offline is a closed port on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest
import torch

import repro.papers.cfaug.model_bit  # noqa: F401  (registers bit_r50x1)
import repro.papers.masktune.models  # noqa: F401  (registers resnet50)
import repro.papers.tap.model_imagenet  # noqa: F401  (registers resnet18)
from repro.data.download.entries import MIRROR_ENV
from repro.errors import BAD_INPUT, explain
from repro.models import build_model
from repro.models.weights import MissingWeights, weight_file


@pytest.fixture
def offline(monkeypatch, tmp_path) -> str:
    """Every host replaced by a port on 127.0.0.1 where nothing listens; torch hub's folder under tmp_path."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}/m")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("REPRO_WEIGHTS", raising=False)
    return f"http://127.0.0.1:{port}/m"


LOADERS = [  # (model, build kwargs given tmp_path, catalogue entry, target under tmp_path, the fallback's words)
    ("resnet18", lambda t: {}, "resnet18_imagenet", "hub/checkpoints/resnet18-f37072fd.pth", "--init random"),
    ("resnet50", lambda t: {}, "resnet50_ram", "hub/checkpoints/resnet50_ram-a26f946b.pth", "--init random"),
    ("bit_r50x1", lambda t: {"init": "bit_s", "weights": t / "data" / "models" / "BiT-S-R50x1.npz"}, "bit_s_r50x1",
     "data/models/BiT-S-R50x1.npz", "C-1=bit_s"),
]


@pytest.mark.parametrize("model,kwargs,name,target,fallback", LOADERS, ids=[m for m, *_ in LOADERS])
def test_each_loader_fetches_through_the_catalogue_and_offline_says_how(offline, tmp_path, model, kwargs, name,
                                                                          target, fallback):
    with pytest.raises(MissingWeights) as err:
        build_model(model, num_classes=2, **kwargs(tmp_path))
    code, text = explain(err.value)
    assert code == BAD_INPUT and "\n" not in text
    assert f"{offline}/{name}/" in text and str(tmp_path / target) in text and fallback in text, text
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing half-written


def test_a_file_in_place_is_used_without_any_fetch(offline, tmp_path):
    target = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"in place")
    assert weight_file("resnet18_imagenet") == target  # offline, yet no error: nothing was fetched
