"""`repro data check`: check every registered dataset under a data root and print a table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from repro.data.catalog import DATASETS, DatasetStatus, Finding, dataset

if TYPE_CHECKING:
    from rich.console import Console

_STYLES = {"found": "green", "subset": "yellow", "missing": "red", "corrupt": "bold magenta"}


def check_all(data_root: Path | None) -> list[DatasetStatus]:
    """Check every dataset under `data_root`; None reports all as missing with a hint where to point."""
    if data_root is None:
        hint = "no data root: pass --data-root DIR or set REPRO_DATA (expected at DIR/{})"
        return [spec.status(Path(spec.relpath), Finding("missing", "", hint.format(spec.relpath)))
                for spec in DATASETS]
    return [spec.check(Path(data_root)) for spec in DATASETS]


def render(statuses: list[DatasetStatus], console: Console) -> None:
    """A compact table (dataset, papers, state, counts), then one paragraph per dataset not fully found:
    the path looked at, the expected layout and how to obtain it."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="datasets")
    for column in ("dataset", "papers", "state", "counts"):
        table.add_column(column)
    for status in statuses:
        spec = dataset(status.name)
        table.add_row(status.name, ", ".join(spec.papers), f"[{_STYLES[status.state]}]{status.state}[/]",
                      escape(status.counts))
    console.print(table)
    for status in statuses:
        if status.state != "found":
            spec = dataset(status.name)
            console.print(f"[{_STYLES[status.state]}]{status.name}[/] ({status.state}) at {escape(str(status.path))}: "
                          f"expected {escape(spec.layout)}. {escape(status.detail)}\n", highlight=False)
