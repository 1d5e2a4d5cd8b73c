"""Which evaluation rows the saliency AUPR uses (§7.3)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from repro.papers.cfaug.listings import Item
from repro.papers.cfaug.posthoc import candidate_rows, subset_rows


def test_cct_saliency_uses_only_images_with_a_bbox_and_a_seeded_subset():
    items = [Item(Path(f"{i}.jpg"), 0, 0, boxes=((1.0, 1.0, 2.0, 2.0),) if i % 3 else ()) for i in range(9)]
    ds = SimpleNamespace(items=items)
    assert candidate_rows("cct", ds) == [1, 2, 4, 5, 7, 8]
    picked = subset_rows(candidate_rows("cct", ds), 3)
    assert picked == subset_rows(candidate_rows("cct", ds), 3)  # seeded
    assert len(picked) == 3 and set(picked) <= {1, 2, 4, 5, 7, 8}
    assert picked == sorted(picked) and subset_rows([0, 1, 2], None) == [0, 1, 2]


def test_other_datasets_use_every_row():
    class Set:
        items = [Item(Path("a.jpg"), 0, 0)] * 4

        def __len__(self) -> int:
            return 4

    assert candidate_rows("waterbirds", Set()) == [0, 1, 2, 3]
