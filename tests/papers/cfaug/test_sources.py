"""cfaug sources (spec §9): the quick profile trains on the real data where the data root holds it, else on the
synthetic data in the official layout; smoke always on the synthetic data."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.papers.cfaug.fixtures import write_fixtures
from repro.papers.cfaug.sources import prepare_source, source_for
from repro.papers import get_paper


def _ctx(profile: str, data_root: Path | None, runs: Path):
    return get_paper("cfaug").context(profile, None, "code", {}, runs / "out", data_root, runs)


@pytest.mark.parametrize("profile,with_data,synthetic", [("quick", True, False), ("quick", False, True),
                                                         ("smoke", True, True)])
def test_quick_uses_the_real_data_where_present(tmp_path, profile, with_data, synthetic):
    data = tmp_path / "data"
    if with_data:
        write_fixtures(data, "in9", per_class=2, size=16, seed=1)
    ctx = _ctx(profile, data if with_data else None, tmp_path / "runs")
    prepare_source(ctx, "in9")
    source = source_for(ctx, "in9")
    assert source["synthetic"] is synthetic
    assert (Path(source["root"]) == data.resolve()) is not synthetic
