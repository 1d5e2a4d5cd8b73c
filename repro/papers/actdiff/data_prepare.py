"""`repro data prepare actdiff`: the derived data of every actdiff dataset found under the data root (the X-ray
SPC splits, the MSD tasks' slices); the synthetic data needs none. A dataset folder that is present but malformed
is an error; none present at all is an error naming every expected layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.data.image_sets import DatasetError


def prepare_present(ctx: Any) -> None:
    from repro.papers.actdiff.data_msd import LAYOUT, TASKS
    from repro.papers.actdiff.plans import prepare_msd_tasks
    from repro.papers.actdiff.xray_sources import FOLDERS, prepare_xray_sources

    root = Path(ctx.data_root) if ctx.data_root else None
    xray = ctx.profile == "smoke" or (root is not None and all((root / f).is_dir() for f in FOLDERS))  # smoke: fixtures
    if xray:
        prepare_xray_sources(ctx)
    skipped = prepare_msd_tasks(ctx, skip_missing=True)
    if not xray and len(skipped) == len(TASKS):
        where = f"--data-root {root}" if root else "no --data-root or REPRO_DATA given"
        raise DatasetError(
            f"actdiff: no dataset to prepare ({where}). Expected NIH/ and PadChest/ (the X-ray sets, 128x128 PNGs "
            f"with their label CSVs) and/or {', '.join(LAYOUT.format(task=t.folder) for t in TASKS.values())}; "
            "`repro data check` shows what is found and how to obtain it.")
