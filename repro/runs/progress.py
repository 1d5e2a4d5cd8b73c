"""Progress of a launch: rich bars on a terminal (all runs, and each run's epochs), plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any


class RunProgress:
    """Consumes engine events (`start`, `epoch`, `done`, `failed`) for `total` runs to train."""

    def __init__(self, total: int, labels: dict[str, str], console: Any = None):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.labels = labels
        self.total = total
        self.finished = 0
        self.live = self.console.is_terminal
        self.tasks: dict[str, Any] = {}
        self.last_line: dict[str, float] = {}
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=self.console)
            self.overall = self.bar.add_task("runs", total=total)

    def __enter__(self) -> RunProgress:
        if self.live:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.bar.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        key, kind = event["key"], event["event"]
        label = self.labels.get(key, key)
        if kind in ("done", "failed"):
            self.finished += 1
        if kind == "warning":
            self.console.print(f"[yellow]warning[/yellow] {label}: {event['message']}", soft_wrap=True)
        elif self.live:
            self._live(event, key, kind, label)
        else:
            self._plain(event, key, kind, label)

    def _live(self, event: dict[str, Any], key: str, kind: str, label: str) -> None:
        if kind == "start":
            self.tasks[key] = self.bar.add_task(f"  {label}", total=event["epochs"], completed=event["epoch"])
        elif kind == "epoch" and key in self.tasks:
            self.bar.update(self.tasks[key], completed=event["epoch"])
        elif kind in ("done", "failed"):
            if key in self.tasks:
                self.bar.remove_task(self.tasks.pop(key))
            self.bar.update(self.overall, completed=self.finished)
            if kind == "failed":
                self.console.print(f"[red]failed[/red] {label}: {event['error']}")

    def _plain(self, event: dict[str, Any], key: str, kind: str, label: str) -> None:
        now = time.monotonic()
        if kind == "epoch" and now - self.last_line.get(key, 0) < 10 and event["epoch"] < event["epochs"]:
            return
        self.last_line[key] = now
        where = f"[{self.finished}/{self.total}]"
        if kind == "start":
            text = f"{where} start {label} ({key}) at epoch {event['epoch']}/{event['epochs']}"
        elif kind == "epoch":
            text = f"{where} {label}: epoch {event['epoch']}/{event['epochs']}"
        elif kind == "done":
            text = f"{where} done {label}"
        else:
            text = f"{where} FAILED {label}: {event['error']}"
        print(text, file=sys.stderr, flush=True)
