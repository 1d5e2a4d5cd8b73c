"""Provenance: where and how a run or an artefact was produced."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("repro", "torch", "torchvision", "numpy", "pandas", "scikit-learn", "matplotlib")


def git_commit() -> str:
    """The commit of the repro checkout (with `+dirty` when it has uncommitted changes), or `unknown`."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_name(device: Any) -> str:
    """Human-readable device, e.g. `cuda:0 (NVIDIA H100 80GB HBM3)` or `cpu (x86_64, 2 threads)`."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def device_kind(name: str) -> str:
    """The kind of a `device_name` that speeds are comparable on: `cpu`, or the GPU model as a slug, e.g.
    `nvidia-h100-80gb-hbm3` for `cuda:0 (NVIDIA H100 80GB HBM3)`."""
    if not name.startswith("cuda"):
        return "cpu"
    model = name.partition("(")[2].rstrip(")") or name
    return "".join(c if c.isalnum() else "-" for c in model.lower()).strip("-")


def provenance(**extra: Any) -> dict[str, Any]:
    """Commit, package versions, python, host and UTC date, plus `extra` fields."""
    return {
        "commit": git_commit(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "host": platform.node(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
