"""The shape of the code (DESIGN.md): no import cycles under repro/, shared modules reach a paper's folder only
through the paper registry (`repro.papers`), the shared registries import no paper, no module path is written as a
string outside the one place that loads the papers, and every deferred function a paper names resolves."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from repro.papers import PAPER_NAMES, STUDIES, get_paper

ROOT = Path(__file__).resolve().parents[1]
PAPER_DIR = re.compile(r"^repro\.papers\.(" + "|".join(PAPER_NAMES) + r")(\.|$)")
MODULE_PATH = re.compile(r"^repro(\.\w+)+(:\w+)?$")
STRING_CALLS = {"import_module"}
LOADER = "repro.papers"  # the one module that may name a paper's module by string (`get_paper`)
# Filled by the papers (`repro.papers.load_all`), they must not import one.
REGISTRIES = ("repro.methods", "repro.models", "repro.data.registry")


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
    passed to `import_module` or written as a `module:function` path."""
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


def test_registries_import_no_paper():
    bad = sorted((src, dst) for src in REGISTRIES for dst in GRAPH[src] if dst.startswith("repro.papers"))
    assert not bad, "registries importing the papers:\n" + "\n".join(f"{s} -> {d}" for s, d in bad)


def module_path_strings(path: Path) -> list[str]:
    """String constants in a file that are module paths (`repro.x.y`, `repro.x:f`): code a reader cannot follow."""
    return [node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.match(node.value)
            and "." in node.value.split(":")[0]]


def test_no_module_path_strings_outside_the_paper_loader():
    bad = {name: found for name, path in MODULES.items() if name != LOADER and (found := module_path_strings(path))}
    assert not bad, f"module paths as strings (write a plain import): {bad}"


def test_module_path_strings_are_found(tmp_path: Path):
    source = tmp_path / "m.py"
    source.write_text('import importlib\nf = importlib.import_module("repro.papers.tap.report")\n'
                      'g = "repro.engine:fit"\ndoc = "see `repro.papers.load_all`"\n')
    assert sorted(module_path_strings(source)) == ["repro.engine:fit", "repro.papers.tap.report"]


def _targets(fn) -> tuple | None:
    """(load, name) of a `deferred` function, through any `functools.partial` around it."""
    while hasattr(fn, "func"):
        fn = fn.func
    return getattr(fn, "target", None)


def deferred_targets() -> list[tuple[str, object, str]]:
    out = []
    for paper in PAPER_NAMES:
        p = get_paper(paper)
        fns = [(f"{paper} prepare", p.prepare), (f"{paper} job", p.job), (f"{paper} bench_cases", p.bench_cases),
               (f"{paper} bench_rows", p.bench_rows)] + [
            (f"{paper}/{a.name} {kind}", getattr(a, kind)) for a in p.artefacts.values()
            for kind in ("plan", "build", "prepare")]
        out += [(label, *target) for label, fn in fns if fn is not None and (target := _targets(fn))]
    return out


@pytest.mark.parametrize("label,load,name", deferred_targets(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_deferred_function_resolves(label, load, name):
    assert callable(getattr(load(), name)), label


def test_deferred_functions_are_found():
    assert len(deferred_targets()) > 40


@pytest.mark.parametrize("paper", PAPER_NAMES)
def test_each_paper_registers_through_its_own_function(paper):
    from repro.data.registry import DATASETS
    from repro.methods import PENALTIES
    from repro.models import MODELS

    register = get_paper(paper).register
    assert register is not None
    before = (len(DATASETS), len(MODELS), len(PENALTIES))
    register()  # idempotent: the pipeline may load every paper more than once
    assert (len(DATASETS), len(MODELS), len(PENALTIES)) == before
    assert any(f.__module__.startswith(f"repro.papers.{paper}.")
               for f in [*DATASETS.values(), *MODELS.values(), *PENALTIES.values()])
