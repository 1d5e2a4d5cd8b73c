"""Per-epoch resume and completion for the papers' own training loops (`repro.engine.TRAINERS`): a run's
`last.pt` restores every stateful object, `metrics.jsonl` keeps one record per finished epoch, and a finished
run gets its `result.json` and `done` marker."""

from __future__ import annotations

from typing import Any, Callable

import torch

from repro.runs.store import RunRecord, atomic_write_json, atomic_write_text


def resume(record: RunRecord, device: torch.device, **stateful: Any) -> dict[str, Any] | None:
    """Load the run's `last.pt` into each named object (`load_state_dict` of its entry) and return the whole
    checkpoint, or None when the run has none; `metrics.jsonl` is cut to the epochs the checkpoint covers."""
    ckpt = None
    if record.path("last.pt").exists():
        ckpt = torch.load(record.path("last.pt"), map_location=device, weights_only=False)
        for name, obj in stateful.items():
            obj.load_state_dict(ckpt[name])
    done = 0 if ckpt is None else ckpt["epoch"] + 1
    log = record.path("metrics.jsonl")
    lines = log.read_text().splitlines() if log.exists() else []
    atomic_write_text(log, "".join(line + "\n" for line in lines[:done]))
    return ckpt


def finish(record: RunRecord, result: dict[str, Any], emit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Write `result.json` and the `done` marker."""
    atomic_write_json(record.path("result.json"), result)
    atomic_write_text(record.path("done"), "")
    record.log("done")
    emit({"event": "done", "key": record.key})
    return result
