"""The repository documents itself: the README names every switch, and no message or document points to a file a
user of the repository does not have (the specs live outside it)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from repro.papers import PAPER_NAMES, get_paper

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
OUTSIDE = re.compile(r"specs?/\w+\.md|\bspecs?\b[^.]{0,12}§|\bspec [ACD]-\d")  # `specs/tap.md`, `spec §7.1`, `spec C-1`


def _messages() -> list[tuple[str, int, str]]:
    """Every string constant of repro/ that is not a docstring or a comment: what a user can be shown."""
    out = []
    for path in sorted((ROOT / "repro").rglob("*.py")):
        tree = ast.parse(path.read_text())
        docs = {id(node.body[0].value) for node in ast.walk(tree)
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        out += [(str(path.relative_to(ROOT)), node.lineno, node.value) for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs]
    return out


@pytest.mark.parametrize("paper", PAPER_NAMES)
def test_the_readme_names_every_switch_of_each_paper(paper):
    missing = [f"{s.id} {s.name}" for s in get_paper(paper).switches if s.id not in README or f"`{s.name}`" not in README]
    assert not missing, f"README lacks the switches {missing}; `repro {paper} switches` lists them"
    assert f"repro {paper} switches" in README


def test_no_message_or_readme_line_cites_a_spec_file():
    cited = [f"{path}:{line}: {text[:80]!r}" for path, line, text in _messages() if OUTSIDE.search(text)]
    cited += [f"README.md: {m.group(0)!r}" for m in OUTSIDE.finditer(README)]
    assert not cited, "\n".join(cited)


def test_the_pattern_finds_what_it_is_for():
    assert all(OUTSIDE.search(t) for t in ("see specs/cfaug.md §3.0", "(spec §7.1)", "(spec C-16; ...)"))
    assert not any(OUTSIDE.search(t) for t in ("spectral", "the spec's defaults are", "repro tap switches"))
