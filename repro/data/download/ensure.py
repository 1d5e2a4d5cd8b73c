"""What an artefact command's `--download` calls before planning: the datasets (and weights) it needs, fetched into
the data root given, else into the default data root $REPRO_DATA_HOME or ~/.cache/repro/data."""

from __future__ import annotations

import os
from pathlib import Path

DATA_HOME_ENV = "REPRO_DATA_HOME"


def default_data_root() -> Path:
    """$REPRO_DATA_HOME, else ~/.cache/repro/data: where `--download` puts data when no --data-root is given."""
    return Path(os.environ.get(DATA_HOME_ENV) or Path.home() / ".cache" / "repro" / "data")


def for_artefacts(names: list[str], data_root: Path | None, dry_run: bool) -> tuple[Path, bool]:
    """An artefact command's `--download`: the data root to use and whether its data is present now. A dry run
    fetches nothing and prints what a download would fetch and how large; otherwise what is missing is fetched."""
    from rich.console import Console
    from rich.filesize import decimal

    from repro.data.download.run import to_fetch

    root = Path(data_root) if data_root is not None else default_data_root()
    if not dry_run:
        return ensure_datasets(names, root), True
    pending = to_fetch(names, root)
    say = Console(stderr=True).print
    if not pending:
        say(f"--download: everything this needs is present under {root}", highlight=False)
        return root, True
    total = sum(size or 0 for _, size in pending)
    unknown = sum(size is None for _, size in pending)
    say(f"--download would fetch into {root}: "
        + ", ".join(f"{e.name} ({e.kind}, {decimal(size) if size else 'size not published'})" for e, size in pending)
        + f"; {decimal(total)} in all" + (f", plus {unknown} of unpublished size" if unknown else ""),
        highlight=False, soft_wrap=True)
    return root, False


def ensure_datasets(names: list[str], data_root: Path | None) -> Path:
    """Fetch whatever of `names` (catalogue entries or papers) is not present, and return the data root used;
    DownloadFailed (exit 2) names the manual step of anything that could not be fetched."""
    from rich.console import Console

    from repro.data.download.run import download, to_fetch

    root = Path(data_root) if data_root is not None else default_data_root()
    if to_fetch(names, root):
        download(names, root, large=False, console=Console(stderr=True))
    return root
