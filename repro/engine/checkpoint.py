"""A run's resume point (`checkpoint.pt`): its states, RNG states, selection and records so far; a damaged one is set
aside and the run starts from scratch."""

from __future__ import annotations

from typing import Any, Callable

import torch

from repro.runs import record as contract
from repro.runs.store import RunRecord, atomic_write, atomic_write_json, set_aside

Events = Callable[[dict[str, Any]], None]


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    import random

    import numpy as np

    state = {"gen": gen.get_state(), "torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(gen: torch.Generator, state: dict[str, Any]) -> None:
    import random

    import numpy as np

    gen.set_state(state["gen"])
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _checkpoint_fault(ckpt: Any, expected: dict[str, Any]) -> str | None:
    """Why a loaded checkpoint cannot resume this member (None if it can): not a checkpoint of this job, or model
    weights with other names or shapes."""
    if not isinstance(ckpt, dict):
        return f"holds a {type(ckpt).__name__}, not a checkpoint"
    missing = [k for k in ("epoch", "rng", "best", "records", *expected) if k not in ckpt]
    if missing:
        return "lacks " + ", ".join(missing)
    want, got = expected["model"], ckpt["model"]
    if not isinstance(got, dict) or set(got) != set(want):
        return "holds the weights of another model"
    shapes = [k for k in want if getattr(got[k], "shape", None) != want[k].shape]
    return f"holds {shapes[0]} with another shape" if shapes else None


def set_aside_damaged(record: RunRecord, name: str, reason: str, then: str, emit: Events) -> None:
    """Move a damaged file of an unfinished run to `<name>.corrupt-<time>` (kept for the user) and say so, and
    what `then` happens."""
    aside = set_aside(record.path(name))
    message = f"damaged {name} in {record.dir} ({reason}): moved to {aside.name}, {then}"
    record.log(message)
    emit({"event": "warning", "key": record.key, "message": message})


def load_checkpoint(record: RunRecord, expected: dict[str, Any], emit: Events) -> Any:
    """The member's checkpoint on the CPU, or None: none saved, or one that cannot be read or does not fit
    `expected` (the member's `Job.states`), which is set aside. On the CPU whatever the run's device: RNG states
    must be CPU byte tensors, and `load_state_dict` copies weights and optimiser state onto their parameters'
    device."""
    path = record.path(contract.CHECKPOINT)
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated, empty, garbage: torch raises many types
        fault = ": ".join(["unreadable", type(e).__name__, *str(e).splitlines()[:1]])
    else:
        fault = _checkpoint_fault(ckpt, expected)
    if fault:
        set_aside_damaged(record, contract.CHECKPOINT, fault, "training from scratch", emit)
        record.path(contract.CHECKPOINT_INFO).unlink(missing_ok=True)
        return None
    return ckpt


def save_checkpoint(record: RunRecord, epoch: int, state: dict[str, Any], gen: torch.Generator,
                    best: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """The resume point after `epoch`, with the selection so far (`Best.to_dict`) and the run's records so far
    (metrics.jsonl is rewritten from them)."""
    ckpt = {"epoch": epoch, **state, "rng": _rng_state(gen), "best": best, "records": records}
    atomic_write(record.path(contract.CHECKPOINT), lambda f: torch.save(ckpt, f))
    atomic_write_json(record.path(contract.CHECKPOINT_INFO), {"epoch": epoch})  # read by the launcher for packs

