"""The TAP paper's two-layer MNIST CNN `Net_one` (tap spec §3.1) and the staged-network base that all TAP
models share: a chain of stages whose outputs are the targeted activations, then a head to logits."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from repro.models import register_model


class StagedNet(nn.Module):
    """`stages` run in order; with `record` set, each stage output (a targeted layer) is kept in
    `activations`, shallow to deep, in a fresh list. `head` maps the last stage output to logits."""

    def __init__(self, stages: Sequence[nn.Module], head: nn.Module):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.record = False
        self.activations: list[Tensor] = []

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        acts = []
        for stage in self.stages:
            x = stage(x)
            acts.append(x)
        self.activations = acts if self.record else []
        return self.head(x), None

    @property
    def cam_layer(self) -> nn.Module:
        """The layer whose output XGradCAM reads (the cross study's MaskTune masks): the deepest targeted stage
        (ResNet-18's layer4, post-ReLU, as MaskTune's ResNets); a property, so the state dict is unchanged."""
        return self.stages[-1]


class NetOne(StagedNet):
    """Net_one: a `StagedNet` whose XGradCAM layer is the ReLU before the last pooling."""

    @property
    def cam_layer(self) -> nn.Module:
        """The ReLU after the last conv, before its pooling (as MaskTune's SmallCNN); a property, so the state dict
        is unchanged."""
        return self.stages[-1][1]


@register_model("tap_cnn")
def tap_cnn() -> NetOne:
    """Net_one, random (PyTorch default) init, 127,110 parameters; TAP targets both layers (§3.1):
    act1 = pool(relu(conv1)) 100x14x14, act2 = pool(relu(conv2)) 100x6x6 for a 1x28x28 input."""
    return NetOne(
        [nn.Sequential(nn.Conv2d(1, 100, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2)),
         nn.Sequential(nn.Conv2d(100, 100, 3, 1, 0), nn.ReLU(), nn.MaxPool2d(2))],
        nn.Sequential(nn.Flatten(), nn.Linear(3600, 10)),  # 10 outputs hard-coded in the code
    )
