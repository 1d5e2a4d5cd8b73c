"""Where actdiff's MSD slices come from (spec §6): the MSD artefacts (Table 2's MSD columns, Figures 4 and 8) first
cache each task's selected slices in `<runs>/prepared/actdiff/msd-<task>-s<split seed>/`
(`repro.papers.actdiff.data_msd.prepare_msd`); runs name that folder and its fingerprint. The smoke profile
prepares them from small synthetic NIfTI volumes written in the official layout
(`repro.papers.actdiff.msd_fixtures`), marked `synthetic`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.data.image_sets import DatasetError
from repro.runs.prepared import is_prepared, prepared_dir, read_record, recorded

# Slices per split and the cached sizes, each with its source; the smoke profile's fit the fixture volumes.
MSD_SLICES = {"n": {"train": 128, "valid": 256, "test": 256},  # base_<task>msd.yml, text "128/256/256"
              "sizes": {"train": 110, "valid": 100, "test": 100}}  # §6.4: resize 110 + random crop 100 (train), 100
SMOKE_SLICES = {"n": {"train": 8, "valid": 8, "test": 8}, "sizes": {"train": 31, "valid": 28, "test": 28}}


def synthetic(ctx: Any) -> bool:
    return ctx.profile == "smoke"


def slices_setting(ctx: Any) -> dict[str, dict[str, int]]:
    return SMOKE_SLICES if synthetic(ctx) else MSD_SLICES


def split_seeds(ctx: Any, seeds: int) -> list[int]:
    """The split seeds the runs need: 0 (the code's, A-4 `fixed`) or each run seed (`run_seed`)."""
    return [0] if ctx.switches["split_seed"] == "fixed" else list(range(seeds))


def folder_name(ctx: Any, task: str, split_seed: int) -> str:
    return f"actdiff/{'synthetic-' if synthetic(ctx) else ''}msd-{task}-s{split_seed}"


def _prepared(ctx: Any, task: str, split_seed: int) -> Path:
    return prepared_dir(ctx.runs_dir, folder_name(ctx, task, split_seed))


def prepared(ctx: Any, task: str, split_seed: int) -> bool:
    """Whether the task's slices for this split seed are cached."""
    return is_prepared(_prepared(ctx, task, split_seed))


def _up_to_date(path: Path, folder: Path) -> bool:
    return (recorded(path) or {}).get("folder") == str(folder.resolve())


def data_folder(ctx: Any) -> Path | None:
    """The folder holding the task folders: `<data root>/MSD` (smoke: the synthetic one, written if absent)."""
    from repro.papers.actdiff.data_msd import TASKS

    if synthetic(ctx):
        root = prepared_dir(ctx.runs_dir, "actdiff/synthetic-msd-data")
        if not all((root / "MSD" / t.folder / "dataset.json").is_file() for t in TASKS.values()):
            from repro.papers.actdiff.msd_fixtures import write_fixtures

            write_fixtures(root)
        return root / "MSD"
    return Path(ctx.data_root) / "MSD" if ctx.data_root else None


def prepare_tasks(ctx: Any, tasks: tuple[str, ...], seeds: int, skip_missing: bool = False) -> list[str]:
    """Cache the slices of `tasks` for the context's split seeds, unless cached from the same folder already;
    returns the tasks skipped. A task folder that is absent is skipped with a note with `skip_missing` (Table 2,
    `repro data prepare`), else an error; one present but malformed is always an error naming what is wrong."""
    from repro.papers.actdiff.data_msd import TASKS, prepare_msd

    if ctx.dry_run and synthetic(ctx):
        return []  # the synthetic volumes are written by the preparation itself
    root, skipped = data_folder(ctx), []
    for key in tasks:
        task = TASKS[key]
        todo = {s: _prepared(ctx, key, s) for s in split_seeds(ctx, seeds)}
        folder = root / task.folder if root else None
        if folder is None or not folder.exists():
            if all(prepared(ctx, key, s) for s in todo):
                continue  # prepared earlier; no data root needed now
            if skip_missing:
                where = f"under {ctx.data_root}" if ctx.data_root else "(no --data-root given)"
                print(f"note: MSD {task.label} skipped: MSD/{task.folder}/ not found {where} "
                      "(`repro data check` shows the expected layout)")
                skipped.append(key)
                continue
            where = f"under --data-root {ctx.data_root}" if root else "(no --data-root or REPRO_DATA given)"
            raise DatasetError(
                f"actdiff MSD {task.label}: MSD/{task.folder}/ not found {where}. Put the official task folder there "
                f"(dataset.json, imagesTr/*.nii.gz, labelsTr/*.nii.gz; download {task.folder}.tar from "
                "http://medicaldecathlon.com), `repro data check` shows the expected layout, or use --profile smoke "
                "for synthetic volumes.")
        todo = {s: p for s, p in todo.items() if not _up_to_date(p, folder)}
        if todo and not ctx.dry_run:
            setting = slices_setting(ctx)
            prepare_msd(key, folder, todo, setting["n"], setting["sizes"])
    return skipped


def msd_source(ctx: Any, task: str, split_seed: int) -> dict[str, Any]:
    """The prepared task's record (`source.json`) with its folder under `<runs>/prepared` as "prepared"."""
    folder = _prepared(ctx, task, split_seed)
    if ctx.dry_run and not is_prepared(folder):  # `prepare_tasks` checked that the task's folder is there
        from repro.papers import NotPrepared

        raise NotPrepared(f"the MSD slices of {task} are not prepared in {folder} yet")
    return {**read_record(folder, "prepare the MSD slices first (`repro data prepare actdiff --data-root DIR`, or "
                                  "any MSD artefact command)"), "prepared": folder_name(ctx, task, split_seed)}
