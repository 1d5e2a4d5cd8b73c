"""Figure output: PNG, the arrays behind it (.npz) and a provenance sidecar (.json)."""

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


def save_figure(fig: Any, path: Path, prov: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write `path` (PNG), `path.npz` with the plotted arrays and `path.json` with provenance."""
    import matplotlib.pyplot as plt

    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=150, bbox_inches="tight"))
    plt.close(fig)
    atomic_write(path.with_suffix(".npz"), lambda f: np.savez_compressed(f, **arrays))
    atomic_write_json(path.with_suffix(".json"), prov)
    return path
