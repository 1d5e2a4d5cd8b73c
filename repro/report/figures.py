"""Figure output: PNG, the arrays behind it (.npz) and a provenance sidecar (.json). Every PNG names its profile, and
says when its numbers are not comparable with the paper's (a profile other than `paper`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from repro.runs.store import atomic_write, atomic_write_json


def new_figure(rows: int, cols: int, size: tuple[float, float]) -> tuple[Any, Any]:
    """A matplotlib figure on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=size, squeeze=False)


def profile_label(profile: str | None) -> str:
    """What a figure or table is, by its profile: `profile paper`, or `profile smoke: not comparable with the paper`."""
    if profile == "paper":
        return "profile paper"
    return f"profile {profile or 'unknown'}: reduced run, not comparable with the paper"


def integer_ticks(ax: Any, axis: str = "x") -> None:
    """Only whole numbers on an axis of epochs, widened to show two of them when the data span less (call it after
    plotting)."""
    from matplotlib.ticker import MaxNLocator

    low, high = ax.get_xlim() if axis == "x" else ax.get_ylim()
    if high - low < 1:
        (ax.set_xlim if axis == "x" else ax.set_ylim)(np.ceil(low) - 0.5, np.ceil(low) + 1.5)
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def colour_bar(fig: Any, image: Any, axes: Any, label: str) -> None:
    """One colour bar beside `axes` (an axis or several) for the shared scale of `image` (an imshow result)."""
    fig.colorbar(image, ax=axes, fraction=0.025, pad=0.02, label=label)


def save_figure(fig: Any, path: Path, prov: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write `path` (PNG, its profile stamped below the plot), `path.npz` with the plotted arrays and `path.json`
    with provenance."""
    import matplotlib.pyplot as plt

    profile = prov.get("profile")
    fig.text(0.5, -0.01, f"{prov.get('paper', '')} {path.stem}, {profile_label(profile)}", ha="center", va="top",
             fontsize=9, color="black" if profile == "paper" else "firebrick")
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=150, bbox_inches="tight"))
    plt.close(fig)
    atomic_write(path.with_suffix(".npz"), lambda f: np.savez_compressed(f, **arrays))
    atomic_write_json(path.with_suffix(".json"), prov)
    return path
