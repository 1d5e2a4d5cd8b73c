"""Where actdiff's X-ray splits come from (spec §7): `repro actdiff figure5b` (and 5a, 9) first prepares, per SPC
ratio, the selected NIH + PadChest images as tensors in `<runs>/prepared/actdiff/xray-r<ratio>/`
(`repro.papers.actdiff.data_xray.prepare_xray`); runs name that folder and its fingerprint. The smoke profile
prepares them from synthetic CSVs and PNGs written in the official layout
(`repro.papers.actdiff.data_xray.write_fixtures`), marked `synthetic`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.data.image_sets import DatasetError
from repro.runs.prepared import is_prepared, prepared_dir, read_record, recorded

RATIOS = (0.9, 0.5)  # SPC 90% (base_xray.yml) and balanced (base_xray_balanced.yml)
FOLDERS = ("NIH", "PadChest")


def _name(ratio: float, synthetic: bool) -> str:
    return f"actdiff/{'synthetic-' if synthetic else ''}xray-r{ratio:g}"


def _synthetic(ctx: Any) -> bool:
    return ctx.profile == "smoke"


def prepare_xray_sources(ctx: Any) -> None:
    """Prepare both SPC splits from the data root (the smoke profile: from synthetic data), unless prepared from
    the same files already; a missing NIH/ or PadChest/ is an error naming what to put where."""
    from repro.papers.actdiff.data_xray import prepare_xray, write_fixtures

    synthetic = _synthetic(ctx)
    if synthetic and ctx.dry_run:
        return
    if synthetic:
        root = prepared_dir(ctx.runs_dir, "actdiff/synthetic-xray-data")
        if not all((root / f).is_dir() for f in FOLDERS):
            write_fixtures(root)
    else:
        root = Path(ctx.data_root) if ctx.data_root else None
        missing = [f for f in FOLDERS if root is None or not (root / f).is_dir()]
        if missing:
            if all(is_prepared(prepared_dir(ctx.runs_dir, _name(r, False))) for r in RATIOS):
                return  # prepared earlier; no data root needed now
            where = f"under --data-root {root}" if root else "(no --data-root or REPRO_DATA given)"
            raise DatasetError(
                f"actdiff X-ray: {', '.join(f + '/' for f in missing)} not found {where}. Put NIH ChestX-ray14 "
                "(Data_Entry_2017.csv, images-128/) and PadChest (its labels CSV, images-128/, 16-bit) there, every "
                "PNG pre-resized to 128x128 (bilinear, keeping the bit depth; `repro data check` shows the expected layout), or use "
                "--profile smoke for synthetic data.")
    if ctx.dry_run:  # the folders are there; write nothing
        return
    for ratio in RATIOS:
        out = prepared_dir(ctx.runs_dir, _name(ratio, synthetic))
        if (recorded(out) or {}).get("data_root") == str(root):
            continue
        prepare_xray(root, out, ratio)


def xray_source(ctx: Any, ratio: float) -> dict[str, Any]:
    """The prepared split's record (`source.json`) for the context's profile, with its folder under
    `<runs>/prepared` as "prepared"."""
    name = _name(ratio, _synthetic(ctx))
    folder = prepared_dir(ctx.runs_dir, name)
    if ctx.dry_run and not is_prepared(folder):
        from repro.papers import NotPrepared

        raise NotPrepared(f"the X-ray SPC split {name} is not prepared in {folder} yet")
    return {**read_record(folder, "run an X-ray artefact (e.g. `repro actdiff figure5b --data-root DIR`) to prepare "
                                  "the NIH + PadChest splits first"), "prepared": name}
