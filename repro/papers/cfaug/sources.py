"""Where each cfaug dataset's files are, recorded once per runs folder (spec §3.0, §9).

`repro data prepare cfaug` (or the first artefact command) finds each dataset under the data root and writes
`<runs>/prepared/cfaug/<dataset>/source.json`: the data root, a fingerprint of the dataset's file listing, whether
CAGAN infills and the BiT-S weights are there. Runs name that folder, so run keys depend on the data's
fingerprint, not on where it lives. The smoke profile (and quick, where the real data is absent) uses synthetic
data written in the official layouts (`repro.papers.cfaug.fixtures`), marked `synthetic` in every output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from repro.data.image_sets import DatasetError
from repro.runs.prepared import (is_prepared, listing_fingerprint, prepared_dir, read_record, recorded,
                                 run_prepared_root, write_record)

FOLDERS = {"in9": "bg_challenge", "waterbirds": "waterbird", "cct": "cct"}  # under the data root (§3.0)
CAGAN = {"in9": "bg_challenge/train/original_bbox_cf_cagan", "waterbirds": "waterbird/cagan", "cct": "cct/cagan"}
WEIGHTS = "models/BiT-S-R50x1.npz"  # §3.0, §4
HOW = {"in9": "the Background Challenge test tarball and the IN-9 training releases (original, no_fg) linked from "
              "MadryLab/backgrounds_challenge",
       "waterbirds": "waterbird_complete95_forest2water2.tar.gz (Sagawa et al.) with the CUB segmentations",
       "cct": "eccv_18_all_images_sm.tar.gz and eccv_18_annotations.tar.gz (Caltech Camera Traps, CCT-20)"}


def prepared_name(dataset: str, synthetic: bool) -> str:
    return f"cfaug/{'synthetic-' if synthetic else ''}{dataset}"


def prepared_folder(runs_dir: Path, dataset: str, synthetic: bool = False) -> Path:
    return prepared_dir(runs_dir, prepared_name(dataset, synthetic))


def record_source(dataset: str, root: Path, runs_dir: Path, synthetic: bool, known_fingerprint: str | None = None
                  ) -> dict[str, Any]:
    """Validate dataset `dataset` under data root `root` by loading it once (DatasetError otherwise) and write
    its source.json; `known_fingerprint` is the dataset's fingerprint when the caller has just computed it."""
    from repro.papers.cfaug.data import load_cfaug

    data = load_cfaug(dataset, root, size=32)
    weights = root / WEIGHTS
    meta = {"dataset": dataset, "root": str(root.resolve()), "prepared": prepared_name(dataset, synthetic),
            "fingerprint": known_fingerprint or listing_fingerprint(root / FOLDERS[dataset]), "synthetic": synthetic,
            "cagan": (root / CAGAN[dataset]).is_dir(), "weights": str(weights.resolve()) if weights.exists() else None,
            "details": data.details}
    write_record(prepared_folder(runs_dir, dataset, synthetic), meta)
    return meta


def synthetic_root(runs_dir: Path) -> Path:
    return prepared_dir(runs_dir, "cfaug/synthetic")


def prepare_source(ctx: Any, dataset: str | None, needs_bit_s: Callable[[Any, str], bool] | None = None) -> None:
    """Record the source of `dataset` (None: each of the three, skipping those not found) for the context's
    profile: synthetic data for smoke, and for quick where the data root lacks the dataset; the real data for
    paper, whose absence is an error naming what to put where. `needs_bit_s(ctx, name)`: whether the runs start
    from BiT-S (`plans.needs_bit_s`), whose weights are then fetched or checked."""
    from repro.papers.cfaug.fixtures import write_fixtures

    names = [dataset] if dataset else list(FOLDERS)
    for name in names:
        if ctx.dry_run and (uses_synthetic(ctx, name) or _real(ctx, name)):
            continue  # a dry-run writes nothing; the plan says the source is not recorded yet
        if uses_synthetic(ctx, name):
            root = synthetic_root(ctx.runs_dir)
            if not (root / FOLDERS[name]).is_dir():
                write_fixtures(root, name)
            if ctx.profile == "quick":
                print(f"note: {name}: no {FOLDERS[name]}/ under the data root; the quick profile uses synthetic "
                      "data in the official layout instead (marked synthetic in the outputs)")
            _record_unless_same(name, root, ctx.runs_dir, synthetic=True)
        elif _real(ctx, name):
            _record_unless_same(name, Path(ctx.data_root), ctx.runs_dir, synthetic=False)
        elif dataset is None:
            print(f"note: {name} skipped: {FOLDERS[name]}/ not found under {ctx.data_root}")
            continue
        elif not is_prepared(prepared_folder(ctx.runs_dir, name)):
            where = f"under --data-root {ctx.data_root}" if ctx.data_root else "(no --data-root or REPRO_DATA given)"
            raise DatasetError(
                f"cfaug {name}: {FOLDERS[name]}/ not found {where}. Download {HOW[name]} and unpack them in the "
                f"layout that `repro data check --data-root DIR` prints for it, then pass --data-root DIR; "
                "`repro data check` shows what is found. For a demo without the data use --profile smoke (synthetic data).")
        if needs_bit_s is not None and needs_bit_s(ctx, name):
            _ensure_weights(ctx, name)


def _ensure_weights(ctx: Any, name: str) -> None:
    """Runs that start from BiT-S need its npz beside the data (§4): fetched here where there is internet, else a
    clear error before any training starts."""
    from repro.papers.cfaug.model_bit import bit_s_path, fetch_bit_s

    folder = prepared_folder(ctx.runs_dir, name, uses_synthetic(ctx, name))
    meta = read_source(folder)
    if meta["weights"] is None:
        meta["weights"] = str(fetch_bit_s(bit_s_path(Path(ctx.data_root or meta["root"]))).resolve())
        write_record(folder, meta)


def _real(ctx: Any, name: str) -> bool:
    return ctx.data_root is not None and (Path(ctx.data_root) / FOLDERS[name]).is_dir()


def uses_synthetic(ctx: Any, name: str) -> bool:
    """Smoke always, quick where the data root lacks the dataset (and none was recorded), paper never."""
    if ctx.profile != "quick":
        return ctx.profile == "smoke"
    return not _real(ctx, name) and not is_prepared(prepared_folder(ctx.runs_dir, name))


def _record_unless_same(name: str, root: Path, runs_dir: Path, synthetic: bool) -> None:
    now = listing_fingerprint(root / FOLDERS[name])
    meta = recorded(prepared_folder(runs_dir, name, synthetic))
    if meta and meta["root"] == str(root.resolve()) and meta["synthetic"] == synthetic and meta["fingerprint"] == now:
        return
    record_source(name, root, runs_dir, synthetic, now)


def source_for(ctx: Any, dataset: str) -> dict[str, Any]:
    """The recorded source of `dataset` (`prepare_source` runs before planning; a dry-run before it: NotPrepared)."""
    from repro.papers import NotPrepared

    folder = prepared_folder(ctx.runs_dir, dataset, uses_synthetic(ctx, dataset))
    if ctx.dry_run and not is_prepared(folder):
        raise NotPrepared(f"cfaug {dataset}: its source is not recorded in {folder} yet")
    return read_source(folder)


def run_source(record: Any) -> dict[str, Any]:
    """The recorded source a run (`RunRecord`) trains on: its data settings name the prepared folder."""
    return read_source(run_prepared_root(record) / record.config.data["prepared"])


def read_source(folder: Path) -> dict[str, Any]:
    return read_record(folder, "run `repro data prepare cfaug --data-root <data root>` first")
