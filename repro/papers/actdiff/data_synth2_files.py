"""The authors' synth2 files (actdiff spec §5.1): `distractor{1,2,3}_{img,seg}_{i}.npy`, float64 28x28 in {0, 1},
i = 0..511 per pool, as their public repository ships them under `data/synth2/`.

With switch A-20 `synth2_files` (default true) and the files under `<data root>/synth2/`, the synthetic runs read
them instead of the generator: the three pools are packed once into `<runs>/prepared/actdiff/synth2-<fingerprint>/`
and the run's data settings name the source and the files' fingerprint (so they enter the run key); without the
files the data settings stay as they were (generator runs keep their keys). Torch-free at import.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np

from repro.data.image_sets import DatasetError
from repro.runs.prepared import files_digest, is_prepared, prepared_dir, recorded, write_npz, write_record

FOLDER = "synth2"
POOLS = ("distractor1", "distractor2", "distractor3")  # train, valid, test
NAME = re.compile(r"(distractor[123])_(img|seg)_(\d+)\.npy")
GENERATED = "generated (the synth2 generator: one fixed draw of the authors' recipe, not their files)"


def files_of(folder: Path) -> dict[tuple[str, str], list[Path]]:
    """The folder's files by (pool, img|seg), in index order; {} when it holds none."""
    found: dict[tuple[str, str], dict[int, Path]] = {}
    for path in folder.glob("distractor*.npy") if folder.is_dir() else ():
        m = NAME.fullmatch(path.name)
        if m:
            found.setdefault((m[1], m[2]), {})[int(m[3])] = path
    return {k: [v[i] for i in sorted(v)] for k, v in found.items()}


def check_files(folder: Path, files: dict[tuple[str, str], list[Path]]) -> None:
    """DatasetError unless every pool has img and seg files 0..N-1 with one even N shared by all six groups."""
    sizes = {f"{p}_{k}": len(files.get((p, k), [])) for p in POOLS for k in ("img", "seg")}
    n = max(sizes.values())
    gaps = [f"{p}_{k}" for (p, k), paths in files.items() if paths[-1].name != f"{p}_{k}_{len(paths) - 1}.npy"]
    if len(set(sizes.values())) > 1 or n % 2 or gaps:
        raise DatasetError(
            f"actdiff synth2: {folder} holds an incomplete set of the authors' files ("
            + ", ".join(f"{g} {c}" for g, c in sizes.items()) + (f"; indices not 0..N-1 in {', '.join(gaps)}"
                                                                  if gaps else "")
            + "); expected distractor{1,2,3}_{img,seg}_{0..511}.npy. Copy data/synth2/ of the authors' repository "
            "again, or pass --switch synth2_files=false to use the generator")


def fingerprint(files: dict[tuple[str, str], list[Path]]) -> str:
    """16 hex digits of the prepared store's digest over every file's pool, kind, name and content."""
    return files_digest({f"{pool}/{kind}/{path.name}": path for (pool, kind), paths in files.items()
                         for path in paths})[:16]


def read_pools(files: dict[tuple[str, str], list[Path]]) -> dict[str, np.ndarray]:
    """`<pool>_img` and `<pool>_seg` float32 (N, 28, 28) arrays of the files."""
    out = {}
    for (pool, kind), paths in files.items():
        arrays = [np.load(p, allow_pickle=False) for p in paths]
        bad = [p.name for p, a in zip(paths, arrays) if a.shape != (28, 28)]
        if bad:
            raise DatasetError(f"actdiff synth2: {len(bad)} files are not 28x28 (e.g. {bad[0]} under "
                               f"{paths[0].parent}); the authors' files are float64 28x28 images")
        out[f"{pool}_{kind}"] = np.stack(arrays).astype(np.float32)
    return out


def prepared_name(digest: str) -> str:
    return f"actdiff/synth2-{digest}"


@functools.lru_cache(maxsize=8)
def _source(folder: Path, runs_dir: Path, dry_run: bool) -> dict[str, str] | None:
    files = files_of(folder)
    if not files:
        return None
    check_files(folder, files)
    digest = fingerprint(files)
    target = prepared_dir(runs_dir, prepared_name(digest))
    if not dry_run and not is_prepared(target):
        write_npz(target / "pools.npz", read_pools(files))
        write_record(target, {"folder": str(folder.resolve()), "fingerprint": digest,
                              "files": sum(map(len, files.values()))})
    return {"source": "files", "prepared": prepared_name(digest), "fingerprint": digest}


def synth2_source(ctx: Any) -> dict[str, str] | None:
    """The data settings of the authors' files when switch A-20 `synth2_files` is on and `<data root>/synth2/` holds
    them (packed into the run store's prepared folder, unless a dry run), else None: the generator."""
    if not ctx.switches["synth2_files"] or ctx.data_root is None:
        return None
    return _source(Path(ctx.data_root) / FOLDER, Path(ctx.runs_dir), ctx.dry_run)


def load_pools(prepared: Path, digest: str) -> dict[str, np.ndarray]:
    """The packed pools of a prepared folder, after checking they are the files the run key names."""
    if (recorded(prepared) or {}).get("fingerprint") != digest:
        raise DatasetError(f"actdiff synth2: {prepared} does not hold the files of fingerprint {digest}; run the "
                           "artefact command again with --data-root pointing at the authors' synth2 files")
    with np.load(prepared / "pools.npz") as npz:
        return dict(npz)


def describe(data: dict[str, Any], prepared_root: Path) -> str:
    """Which synthetic data a run's data settings read, in words for a provenance."""
    if data.get("source") != "files":
        return GENERATED
    folder = (recorded(prepared_root / data["prepared"]) or {}).get("folder", "?")
    return f"the authors' synth2 .npy files from {folder} (fingerprint {data['fingerprint']})"
