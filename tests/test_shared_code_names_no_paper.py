"""Shared code names no paper (DESIGN.md: code that serves one paper lives in its folder; shared machinery refers
to a paper only through the paper registry).

Every module under repro/ outside repro/papers/ is read as code: its identifiers (split at "_") and the string
literals it acts on (keys, names, paths: those without a space; split into words). Docstrings, comments and
messages are left out: citing where a format or rule comes from ("specs/masktune.md §2", "the cfaug authors'
infills") is provenance, not knowledge the code acts on. No word may belong to one paper's own vocabulary
(`PAPER_WORDS`): the paper names, their first authors, a method only one paper defines, a dataset only one paper
derives. Raw public datasets read in their official formats (MNIST, CelebA, Waterbirds, IN-9, CIFAR-10, SVHN,
MSD, the chest X-ray and knee sets ...) are shared data that any paper may train on, not a paper's.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from repro.papers import PAPER_NAMES, STUDIES

ROOT = Path(__file__).resolve().parents[1]
PAPER_WORDS = {
    *(n for n in PAPER_NAMES if n not in STUDIES),  # actdiff, tap, cfaug, masktune (a study's name, `cross`, is a
    # common word: cross_entropy)
    "viviano", "zhang", "taghanaki",  # the first authors (Chang is too common a word to list)
    "gradmask", "rrr", "rbr", "randmask",  # methods only one paper defines (actdiff, tap, masktune: above)
    "decoy", "pneu", "biased",  # datasets only one paper derives: decoy MNIST, tagged PNEU, biased MNIST
}
# Known exceptions, each to be taken off as soon as its module passes (`test_known_exceptions_are_still_needed`):
# - errors.py: the optional extras are named after what needs them (`pip install 'repro[cfaug]'`);
# - the dataset table and the download catalogue: they name the papers that read each dataset (the `papers` column
#   of `repro data check`, `repro data download <paper>`) and actdiff's synth2 files by name; they move into the
#   papers once the paper registry (repro/papers/__init__.py) lets a paper declare its datasets.
KNOWN = {"repro/errors.py", "repro/data/catalog.py", "repro/data/download/catalogue.py"}
SHARED = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "repro").rglob("*.py")
                if p.relative_to(ROOT).parts[1] != "papers")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def paper_words(path: Path) -> list[str]:
    """`line: word (in what)` for each paper word in the module's identifiers and space-free strings."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings \
                and not re.search(r"\s", node.value):
            texts = [node.value]
        elif isinstance(node, ast.Name):
            texts = [node.id]
        elif isinstance(node, ast.Attribute):
            texts = [node.attr]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            texts = [node.name]
        elif isinstance(node, ast.arg):
            texts = [node.arg]
        elif isinstance(node, ast.alias):
            texts = [node.name, node.asname or ""]
        elif isinstance(node, ast.ImportFrom):
            texts = [node.module or ""]
        else:
            continue
        found += [f"{node.lineno}: {w} (in {t[:60]!r})" for t in texts for w in words(t) if w in PAPER_WORDS]
    return found


def test_the_word_list_catches_a_paper_name():
    module = ROOT / "tests" / "_paper_words_probe.py"
    try:
        module.write_text('"""Docstrings may cite specs/tap.md."""\nPNEU_SIZE = 224\nname = "masktune"\n'
                          'error = "see the TAP spec"\n')
        assert paper_words(module) == ["2: pneu (in 'PNEU_SIZE')", "3: masktune (in 'masktune')"]
    finally:
        module.unlink()


@pytest.mark.parametrize("module", [m for m in SHARED if m not in KNOWN])
def test_shared_module_names_no_paper(module):
    assert paper_words(ROOT / module) == [], f"{module} names a paper's vocabulary; move that code into the paper"


@pytest.mark.parametrize("module", sorted(KNOWN))
def test_known_exceptions_are_still_needed(module):
    """A known exception that no longer names a paper is taken off `KNOWN`, so the check covers it again."""
    if paper_words(ROOT / module) == []:
        pytest.fail(f"{module} names no paper now: remove it from KNOWN")
