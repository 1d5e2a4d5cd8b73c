"""Aggregate seeds with pandas and set the paper's numbers beside them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from repro.papers import PUBLISHED, Tolerance
from repro.runs.store import atomic_write_json, atomic_write_text

STAT_SUFFIXES = ("mean", "std", "n", "published", "published_std", "diff", "within_tol")


def read_published(paper: str, artefact: str) -> pd.DataFrame:
    """The paper's numbers exactly as printed (strings; empty where the paper gives none)."""
    return pd.read_csv(PUBLISHED / f"{paper}_{artefact}.csv", dtype=str, keep_default_na=False)


def aggregate(per_run: pd.DataFrame, keys: list[str], values: list[str], ddof: int = 1) -> pd.DataFrame:
    """Mean, std (sample, ddof=1, unless told otherwise) and n over seeds of each value column, per key; keys
    keep first-seen order. No runs (an empty frame): the empty table of those columns."""
    if per_run.empty:
        return pd.DataFrame(columns=keys + [f"{v}_{s}" for v in values for s in ("mean", "std", "n")])
    grouped = per_run.groupby(keys, sort=False)[values]
    mean, std, n = grouped.mean(), grouped.std(ddof=ddof), grouped.count()
    out = pd.DataFrame(index=mean.index)
    for v in values:
        out[f"{v}_mean"], out[f"{v}_std"], out[f"{v}_n"] = mean[v], std[v], n[v]
    return out.reset_index()


def compare(agg: pd.DataFrame, published: pd.DataFrame, keys: list[str],
            columns: dict[str, tuple[str, str, Tolerance]]) -> pd.DataFrame:
    """Join published values: `columns[value] = (published column, published std column, tolerance)`.

    Rows follow the published table's order; a published row with no runs keeps empty reproduced cells.
    """
    table = published[keys].merge(agg, on=keys, how="left")
    for value in columns:
        if f"{value}_n" in table:
            table[f"{value}_n"] = table[f"{value}_n"].astype("Int64")
    for value, (pub_col, std_col, tol) in columns.items():
        pub = published[pub_col]
        pub_num = pd.to_numeric(pub.replace("", None), errors="coerce")
        pub_std = pd.to_numeric(published[std_col].replace("", None), errors="coerce") if std_col else pub_num * float("nan")
        diff = table[f"{value}_mean"] - pub_num.values
        table[f"{value}_published"] = pub.values
        table[f"{value}_published_std"] = published[std_col].values if std_col else ""
        table[f"{value}_diff"] = diff
        table[f"{value}_within_tol"] = [
            "" if d != d else bool(tol.within(d, s)) for d, s in zip(diff, pub_std.values)
        ]
    ordered = keys + [f"{v}_{s}" for v in columns for s in STAT_SUFFIXES]
    return table[ordered]


def write_table(table: pd.DataFrame, path: Path, prov: dict[str, Any]) -> Path:
    """Write the CSV (4 decimals) and its provenance sidecar `<name>.json` atomically."""
    atomic_write_text(path, table.to_csv(index=False, float_format="%.4f"))
    atomic_write_json(path.with_suffix(".json"), prov)
    return path


def print_table(table: pd.DataFrame, title: str, keys: list[str], values: list[str], console: Any = None) -> None:
    """A compact rich rendering: per value, `ours mean±std | paper mean±std`, green within tolerance."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    t = Table(title=title, caption="ours | paper; green = within tolerance, red = outside")
    for col in [*keys, "n", *values]:
        t.add_column(col, justify="left" if col in keys else "right")
    for _, row in table.iterrows():
        cells = [str(row[k]) for k in keys]
        n = row[f"{values[0]}_n"]
        cells.append("-" if pd.isna(n) else str(int(n)))
        for v in values:
            mean, std = row[f"{v}_mean"], row[f"{v}_std"]
            ours = "-" if pd.isna(mean) else f"{mean:.2f}" + ("" if pd.isna(std) else f"±{std:.2f}")
            pstd = row[f"{v}_published_std"]
            paper = f"{row[f'{v}_published']}" + (f"±{pstd}" if pstd else "")
            ok = row[f"{v}_within_tol"]
            colour = "green" if ok is True else "red" if ok is False else "white"
            cells.append(f"[{colour}]{ours}[/{colour}] | {paper}")
        t.add_row(*cells)
    console.print(t)
