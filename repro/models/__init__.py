"""Architectures, built by name from a registry that each paper fills (`repro.papers.load_all`).

Every model returns `(logits [B, 2], reconstruction or None)` and, when its `record` flag is set,
keeps the activations the actdiff penalty compares in `activations`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model factory under `name`."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS[name] = fn
        return fn

    return deco


def build_model(name: str, **kwargs) -> nn.Module:
    """Build model `name`; unknown names raise KeyError listing the known ones (`repro.papers.load_all` fills the
    registry)."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)

