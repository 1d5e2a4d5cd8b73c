"""SmallCNN records its two blocks' max-pool outputs for the activation penalties (the cross study's TAP and
Actdiff on biased MNIST) without changing its parameters, state dict or outputs."""

from __future__ import annotations

import torch
from torch import nn

from repro.papers.masktune.models import smallcnn


def test_recording_changes_nothing_but_the_activations():
    torch.manual_seed(0)
    model = smallcnn().eval()
    backbone, head = model.net
    x = torch.rand(4, 3, 28, 28)
    plain = model(x)[0]
    assert model.activations == [] and torch.equal(plain, head(backbone(x)))
    assert list(model.state_dict()) == ["net." + k for k in nn.Sequential(backbone, head).state_dict()]
    model.record = True
    logits = model(x)[0]
    assert torch.equal(logits, plain)
    assert [tuple(a.shape) for a in model.activations] == [(4, 16, 12, 12), (4, 32, 4, 4)]
    assert torch.equal(model.activations[1], backbone[:-1](x))  # the last pool's output, before the flatten
