"""Pretrained weights, one path for the three papers that use them (TAP's torchvision ImageNet models, MaskTune's
timm ResNet-50, cfaug's BiT-S): each file is an entry of the download catalogue (`repro data download --list`),
fetched when missing through the catalogue's pinned, resumable fetcher into the folder its loader reads (torch
hub's checkpoints folder, $REPRO_WEIGHTS, `<data root>/models`), then loaded by that loader."""

from __future__ import annotations

from pathlib import Path

from repro.errors import UserError


class MissingWeights(UserError, FileNotFoundError):
    """Pretrained weights are absent and could not be fetched: one paragraph with the URL, the target file and the
    manual step (exit status 2)."""


def weight_file(name: str, data_root: Path | None = None, fallback: str = "") -> Path:
    """The verified file of the catalogue's weights entry `name` (e.g. "resnet18_imagenet"), fetched first when it
    is not in place. When it cannot be fetched, MissingWeights: the download's paragraph, then `fallback` (what
    else the user may do, e.g. train from random init)."""
    from rich.console import Console

    from repro.data.download.catalogue import entry
    from repro.data.download.run import DownloadFailed, download

    weights = entry(name)
    target = weights.target(weights.sources[0], data_root)
    if not target.is_file():
        try:
            download([name], data_root, large=False, console=Console(stderr=True))
        except DownloadFailed as e:
            raise MissingWeights(f"{e} {fallback}".strip()) from e
    return target
