"""What an artefact command's `--download` calls before planning: the datasets (and weights) it needs, fetched into
the data root given, else into the default data root $REPRO_DATA_HOME or ~/.cache/repro/data."""

from __future__ import annotations

import os
from pathlib import Path

DATA_HOME_ENV = "REPRO_DATA_HOME"


def default_data_root() -> Path:
    """$REPRO_DATA_HOME, else ~/.cache/repro/data: where `--download` puts data when no --data-root is given."""
    return Path(os.environ.get(DATA_HOME_ENV) or Path.home() / ".cache" / "repro" / "data")


def ensure_datasets(names: list[str], data_root: Path | None) -> Path:
    """Fetch whatever of `names` (catalogue entries or papers) is not present, and return the data root used;
    DownloadFailed (exit 2) names the manual step of anything that could not be fetched."""
    from rich.console import Console

    from repro.data.download.run import download, to_fetch

    root = Path(data_root) if data_root is not None else default_data_root()
    if to_fetch(names, root):
        download(names, root, large=False, console=Console(stderr=True))
    return root
