"""One profile shape (`repro.config.Profiles`) and one lookup: no paper keeps its own profile-keyed table."""

from __future__ import annotations

import ast
from pathlib import Path

from repro.config import PROFILES, Profiles

ROOT = Path(__file__).resolve().parents[1]


def test_a_profile_overrides_named_fields_and_the_paper_profile_none():
    table = Profiles({"epochs": 50, "seeds": 5}, quick={"epochs": 3}, smoke={"epochs": 1, "limit": 8})
    assert [table.get(p, "epochs") for p in PROFILES] == [50, 3, 1]
    assert table.get("smoke", "seeds") == 5 and table.get("paper", "limit") is None
    assert table.get("quick", "batch_size", 64) == 64 and table.get("smoke", "limit", 99) == 8
    assert table.settings("smoke") == {"epochs": 1, "seeds": 5, "limit": 8}
    assert table.settings("paper") == {"epochs": 50, "seeds": 5}


def profile_keyed_dicts(path: Path) -> list[int]:
    """Lines of dict literals keyed by the profile names: a profile table outside `Profiles`."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Dict)
            and {k.value for k in node.keys if isinstance(k, ast.Constant)} >= set(PROFILES)]


def test_no_paper_keeps_a_profile_table_of_its_own():
    bad = {str(p.relative_to(ROOT)): lines for p in sorted((ROOT / "repro" / "papers").rglob("*.py"))
           if (lines := profile_keyed_dicts(p))}
    assert not bad, f"profile tables outside repro.config.Profiles: {bad}"


def test_a_profile_keyed_dict_is_found(tmp_path):
    source = tmp_path / "m.py"
    source.write_text('P = {"paper": {}, "quick": {"epochs": 2}, "smoke": {}}\nQ = {"paper": 1}\n')
    assert profile_keyed_dicts(source) == [1]
