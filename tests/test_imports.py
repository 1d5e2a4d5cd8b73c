"""The shape of the code (DESIGN.md): no import cycles under repro/, shared modules reach a paper's folder only
through the paper registry (`repro.papers`), and every lazy module path an artefact names resolves."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from repro.papers import PAPER_NAMES, STUDIES, get_paper

ROOT = Path(__file__).resolve().parents[1]
PAPER_DIR = re.compile(r"^repro\.papers\.(" + "|".join(PAPER_NAMES) + r")(\.|$)")
MODULE_PATH = re.compile(r"^repro(\.\w+)+(:\w+)?$")
STRING_CALLS = {"lazy", "import_module"}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / "repro").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = modules()


def resolve(name: str) -> str:
    """The module `name` names (dropping attribute parts: `repro.x.f` -> `repro.x`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(name: str, path: Path) -> set[str]:
    """Modules of repro that `name` imports anywhere in its file (module or function level), or names as a string
    passed to `lazy` / `import_module` or written as a `module:function` path."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {resolve(a.name) for a in node.names if a.name.startswith("repro")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            if base.startswith("repro"):
                out |= {resolve(f"{base}.{a.name}") for a in node.names}
        elif isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func == "partial" and len(node.args) > 1 and getattr(node.args[0], "id", "") == "lazy":
                node = ast.Call(node.args[0], node.args[1:], [])  # partial(lazy, "module", ...)
                func = "lazy"
            if func in STRING_CALLS and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str) and node.args[0].value.startswith("repro"):
                out.add(resolve(node.args[0].value))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ":" in node.value \
                and MODULE_PATH.match(node.value):
            out.add(resolve(node.value.split(":")[0]))
    out.discard(name)
    out.discard("")
    return out


GRAPH = {name: imports(name, path) for name, path in MODULES.items()}


def cycles() -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan), each as a found cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(GRAPH.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    found = cycles()
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_shared_modules_reach_papers_only_through_the_registry():
    bad = sorted((src, dst) for src, dsts in GRAPH.items() if not PAPER_DIR.match(src)
                 for dst in dsts if PAPER_DIR.match(dst))
    assert not bad, "shared modules importing a paper folder:\n" + "\n".join(f"{s} -> {d}" for s, d in bad)


# The cross study (issue 29) runs the papers' methods on each other's benchmarks by reusing their own run builders
# (a home cell must be the paper artefact's run, same key): the one folder that may import other papers.


def test_a_paper_imports_no_other_paper():
    bad = sorted((src, dst) for src, dsts in GRAPH.items() if (m := PAPER_DIR.match(src)) and m.group(1) not in STUDIES
                 for dst in dsts if (n := PAPER_DIR.match(dst)) and n.group(1) != m.group(1))
    assert not bad, "\n".join(f"{s} -> {d}" for s, d in bad)


def _targets(fn) -> tuple[str, str] | None:
    """(module, name) of a `lazy` function, through any `functools.partial` around it."""
    while hasattr(fn, "func"):
        fn = fn.func
    return getattr(fn, "target", None)


def lazy_targets() -> list[tuple[str, str, str]]:
    out = []
    for paper in PAPER_NAMES:
        p = get_paper(paper)
        fns = [(f"{paper} prepare", p.prepare)] + [
            (f"{paper}/{a.name} {kind}", getattr(a, kind)) for a in p.artefacts.values()
            for kind in ("plan", "build", "prepare")]
        for label, fn in fns:
            if fn is not None and (target := _targets(fn)):
                out.append((label, *target))
        out += [(f"{paper} registers", f"repro.papers.{paper}.{module}", "") for module in p.registers]
    return out


@pytest.mark.parametrize("label,module,name", lazy_targets(), ids=lambda v: str(v))
def test_every_lazy_path_resolves(label, module, name):
    mod = importlib.import_module(module)
    assert not name or callable(getattr(mod, name)), label


def test_lazy_paths_are_found():
    assert len(lazy_targets()) > 40
