"""A paper's qualitative claims checked on our numbers: holds / does not hold / n/a, printed and written to
`<artefact>_claims.csv` beside the artefact, so that every profile says which findings it shows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from repro.papers import Context
from repro.report.artefacts import output_path
from repro.report.tables import write_table

Checks = dict[str, bool | None]


class Missing(KeyError):
    """A value an expectation reads is absent or NaN (its runs are not done)."""


class Values:
    """What an expectation rule reads: `v[key]` is a float, or raises Missing."""

    def __init__(self, data: Mapping[Any, Any]):
        self.data = data

    def __getitem__(self, key: Any) -> float:
        value = self.data.get(key)
        if value is None or value != value:
            raise Missing(key)
        return float(value)


Rules = dict[str, Callable[[Values], bool]]


def check_expectations(rules: Rules, values: Mapping[Any, Any]) -> Checks:
    """Each stated outcome: True/False, or None (n/a) when a value it reads is missing."""
    out: Checks = {}
    for text, rule in rules.items():
        try:
            out[text] = bool(rule(Values(values)))
        except Missing:
            out[text] = None
    return out


def verdict(ok: bool | None) -> str:
    return "holds" if ok else "does not hold" if ok is False else "n/a"


def print_checks(checks: Checks, notes: Mapping[str, str] | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    notes = notes or {}
    for text, ok in checks.items():
        colour = "green" if ok else "red" if ok is False else "yellow"
        note = f" [dim]({escape(notes[text])})[/dim]" if notes.get(text) else ""
        console.print(f"[{colour}]{verdict(ok)}[/]: {escape(text)}{note}")


def report_claims(ctx: Context, artefact: str, checks: Checks, prov: dict[str, Any],
                  notes: Mapping[str, str] | None = None) -> Path:
    """Print the checks and write `tables/<paper>/<artefact>_claims.csv` (claim, result, note, profile) with the
    artefact's provenance; `notes[claim]` says why a claim cannot be shown or what it was read on."""
    print_checks(checks, notes)
    notes = notes or {}
    frame = pd.DataFrame({"claim": list(checks), "result": [verdict(ok) for ok in checks.values()],
                          "note": [notes.get(c, "") for c in checks], "profile": ctx.profile},
                         columns=["claim", "result", "note", "profile"])
    return write_table(frame, output_path(ctx, f"{artefact}_claims", "table"), prov)
