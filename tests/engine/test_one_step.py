"""The training step exists once, in `repro.engine`: no file under repro/papers/ runs a backward pass, steps an
optimiser, an AMP scaler or an lr scheduler, or uses autocast, GradScaler or gradient clipping (issue 27)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PAPERS = Path(__file__).resolve().parents[2] / "repro" / "papers"
FORBIDDEN_CALLS = {"backward": "a backward pass", "step": "an optimiser, scaler or scheduler step"}
FORBIDDEN_NAMES = ("autocast", "GradScaler", "clip_grad")


def step_code(source: str) -> list[str]:
    """The training-step constructs in `source`, each as "line: what"."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FORBIDDEN_CALLS:
            found.append(f"{node.lineno}: .{node.func.attr}() ({FORBIDDEN_CALLS[node.func.attr]})")
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else \
            node.name if isinstance(node, ast.alias) else None
        if name and any(name.split(".")[-1].startswith(f) for f in FORBIDDEN_NAMES):
            found.append(f"{node.lineno if hasattr(node, 'lineno') else '?'}: {name}")
    return found


@pytest.mark.parametrize("snippet", [
    "loss.backward()",
    "scaler.scale(loss).backward()",
    "opt.step()",
    "optimizer.step()",
    "scaler.step(opt)",
    "sched.step(val_ce)",
    "with torch.autocast('cuda'):\n    pass",
    "from torch import autocast",
    "s = torch.amp.GradScaler('cuda')",
    "from torch.amp import GradScaler",
    "nn.utils.clip_grad_norm_(params, 1.0)",
    "from torch.nn.utils import clip_grad_value_",
])
def test_the_walk_finds_each_kind_of_step_code(snippet):
    assert step_code(snippet)


def test_no_paper_writes_its_own_training_step():
    offenders = {str(p.relative_to(PAPERS)): hits for p in sorted(PAPERS.rglob("*.py"))
                 if (hits := step_code(p.read_text()))}
    assert not offenders, f"training-step code outside repro/engine: {offenders}"
