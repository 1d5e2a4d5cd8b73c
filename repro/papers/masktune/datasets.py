"""MaskTune datasets by name: where each one's files are under the data root, and its loader.

`repro data prepare masktune` (or the first artefact command) checks each present dataset and records its
location and fingerprint in `<runs>/prepared/masktune/<dataset>/source.json`; runs name that folder, so run
keys depend on the data's fingerprint, not on where the data lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from repro.data.cats_dogs import load_cats_dogs
from repro.data.celeba import load_celeba
from repro.data.cifar10 import load_cifar10
from repro.data.image_sets import DatasetError, ImageDataset
from repro.data.in9 import load_in9
from repro.data.svhn import load_svhn
from repro.data.waterbirds import load_waterbirds
from repro.papers.masktune.data_biased_mnist import load_biased_mnist
from repro.runs.prepared import is_prepared, prepared_dir, read_record, recorded, write_record

LIMIT_SEED = 0


@dataclass(frozen=True)
class Source:
    """A dataset's folders under the data root and its loader, called with those folders (and, for biased MNIST, whose validation draw depends on it, the run seed and the run's options)."""

    folders: tuple[str, ...]
    loader: Callable[..., ImageDataset]
    seeded: bool = False

    def load(self, *folders: Path, seed: int, **options: Any) -> ImageDataset:
        return self.loader(*folders, seed, **options) if self.seeded else self.loader(*folders, **options)


SOURCES: dict[str, Source] = {
    "biased_mnist": Source(("MNIST",), load_biased_mnist, seeded=True),
    "celeba": Source(("celeba",), load_celeba),
    "waterbirds": Source(("waterbird_corrected",), load_waterbirds),
    "in9l": Source(("bg_challenge/train/in9l", "bg_challenge/test"), load_in9),
    "cifar10": Source(("cifar-10-batches-py",), load_cifar10),
    "svhn": Source(("svhn",), load_svhn),
    "cats_dogs": Source(("dogs-vs-cats",), load_cats_dogs),
}


def prepared_folder(runs_dir: Path, name: str) -> Path:
    return prepared_dir(runs_dir, f"masktune/{name}")


def record_source(name: str, data_root: Path, runs_dir: Path) -> dict[str, Any]:
    """Load dataset `name` from `data_root` once (validating its layout; DatasetError otherwise) and write
    its source.json: the folders, the fingerprint of its split lists, and the loader's details."""
    src = SOURCES[name]
    folders = [Path(data_root).resolve() / f for f in src.folders]
    missing_error(name, data_root)
    ds = src.load(*folders, seed=0)
    meta = {"dataset": name, "folders": [str(f) for f in folders], "fingerprint": ds.fingerprint(),
            "sizes": {k: len(v) for k, v in ds.splits.items()}, "details": ds.details}
    write_record(prepared_folder(runs_dir, name), meta)
    return meta


def missing_error(name: str, data_root: Path) -> None:
    """A DatasetError naming the folders of dataset `name` that are not under `data_root`, if any."""
    missing = [str(f) for f in (Path(data_root).resolve() / f for f in SOURCES[name].folders) if not f.is_dir()]
    if missing:
        raise DatasetError(f"{name}: missing {', '.join(missing)} under --data-root {data_root}; "
                           "`repro data check` lists every dataset's expected layout and where to obtain it")


def read_source(folder: Path) -> dict[str, Any]:
    return read_record(folder, "run `repro data prepare masktune --data-root <data root>` first")


def _limited(ds: ImageDataset, limits: dict[str, int]) -> ImageDataset:
    """Seeded subsets (sorted) of the splits named in `limits` (reduced profiles). Test sets of one size share
    one draw, so parallel test sets (biased MNIST's original and biased) keep the same images."""
    rng = np.random.RandomState(LIMIT_SEED)
    for split, n in limits.items():
        picks: dict[int, np.ndarray] = {}
        for name in [k for k in ds.splits if k == split or (split == "test" and k.startswith("test"))]:
            s = ds.splits[name]
            if n < len(s):
                if len(s) not in picks:
                    picks[len(s)] = np.sort(rng.choice(len(s), n, replace=False))
                ds.splits[name] = s.subset(picks[len(s)])
    return ds


def load(data: dict[str, Any], seed: int, prepared_root: Path) -> ImageDataset:
    """The dataset a run's `data` settings name, from the folders its source.json records."""
    meta = read_source(prepared_root / data["prepared"])
    src = SOURCES[data["name"]]
    ds = src.load(*map(Path, meta["folders"]), seed=seed, **data.get("options", {}))
    if ds.fingerprint() != meta["fingerprint"] and data["name"] != "biased_mnist":  # its val draw is per seed
        raise DatasetError(f"{data['name']}: the files under {meta['folders']} changed since they were prepared "
                           "(fingerprint mismatch); run `repro data prepare masktune` again")
    return _limited(ds, data.get("limits", {}))


def prepare_sources(ctx: Any, names: tuple[str, ...], skip_missing: bool = False) -> None:
    """Record the sources of datasets `names` found under ctx.data_root (those already recorded are kept
    unless a data root is given). `skip_missing` (`repro data prepare masktune`) notes and skips a dataset
    that is not there; otherwise its absence is an error naming what to put where."""
    todo = [n for n in names if ctx.data_root is not None or not is_prepared(prepared_folder(ctx.runs_dir, n))]
    if todo and ctx.data_root is None:
        raise FileNotFoundError(
            f"{', '.join(todo)} not prepared and no data root is given: pass --data-root DIR (or set REPRO_DATA) "
            f"where DIR holds {', '.join('/'.join(SOURCES[n].folders) for n in todo)}; `repro data check` shows "
            "what is found and where to obtain it.")
    for name in todo:
        missing = [f for f in SOURCES[name].folders if not (Path(ctx.data_root) / f).is_dir()]
        if missing and skip_missing:
            print(f"note: {name} skipped: {', '.join(missing)} not found under {ctx.data_root}")
            continue
        if ctx.dry_run:  # check the folders, write nothing
            if missing:
                missing_error(name, Path(ctx.data_root))
            continue
        meta = recorded(prepared_folder(ctx.runs_dir, name))
        if meta and not missing and meta["folders"] == [
                str((Path(ctx.data_root) / f).resolve()) for f in SOURCES[name].folders]:
            continue  # same files as recorded: the fingerprint is checked again when a run loads them
        record_source(name, Path(ctx.data_root), ctx.runs_dir)
