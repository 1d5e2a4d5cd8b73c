"""The authors' corrected Waterbirds, read from its `metadata.csv` (specs/masktune.md §2.3, D-28).

Label y (0 landbird, 1 waterbird); group = 2 * place + y (place 0 land, 1 water). Counts come from the
metadata, never from constants: the corrected version's counts are unpublished. Images keep the CSV order.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath

from repro.data.image_files import SPLITS, Source, coded_splits, flat_name
from repro.data.image_sets import ImageDataset
from repro.data.probes import IMAGES, Finding, Probe, csv_rows, nested_files, relative, state_of, verify_file

METADATA = "metadata.csv"
GROUPS = ("landbird on land", "waterbird on land", "landbird on water", "waterbird on water")
BINARY = {0: 0, 1: 1}
ORIGINAL_FOLDER = "waterbird_complete95_forest2water2"  # Sagawa et al.'s tarball, not the corrected data
ORIGINAL_COUNTS = {"train": 4_795, "val": 1_199, "test": 5_794}
SOURCE = Source(
    "Waterbirds (corrected)",
    f"<root>/{METADATA} (img_id, img_filename, y, split, place, place_filename) and the images at "
    "<root>/<img_filename> (<species folder>/<file>.jpg)",
    "download the MaskTune authors' corrected Waterbirds (Google Drive file id 1xPNYQskEXuPhuqT5Hj4hXPeJa9jh7liL, "
    "linked from the aliasgharkhani/Masktune README) and unpack it so that metadata.csv is in the root")


def image_names(relpaths: list[str]) -> tuple[list[str], str]:
    """The basenames when unique across species folders, else every relative path flattened ("a/b" -> "a__b");
    second item: which of the two."""
    names = [PurePosixPath(r).name for r in relpaths]
    if len(set(names)) == len(names):
        return names, "basename"
    return [flat_name(r) for r in relpaths], "relative path"


def load_waterbirds(root: Path) -> ImageDataset:
    """train / val / test from the metadata's split column; `details["warning"]` flags the original tarball."""
    meta = SOURCE.read_csv(root / METADATA, ["img_filename", "y", "split", "place"], "img_filename")
    relpaths = meta["img_filename"].tolist()
    SOURCE.unique(relpaths, "img_filename", root / METADATA)
    split = SOURCE.codes(meta, "split", {0: 0, 1: 1, 2: 2}, root / METADATA)
    y = SOURCE.codes(meta, "y", BINARY, root / METADATA)
    place = SOURCE.codes(meta, "place", BINARY, root / METADATA)
    files = SOURCE.existing_files(root, relpaths, root / METADATA)
    names, naming = image_names(relpaths)
    splits, group_counts = coded_splits(split, y, 2 * place + y, names, files, GROUPS)
    counts = {s: len(splits[s]) for s in SPLITS}
    details: dict[str, object] = {"root": str(root), "counts": counts, "group_counts": group_counts,
                                  "groups": list(GROUPS), "names": naming}
    if root.resolve().name == ORIGINAL_FOLDER or counts == ORIGINAL_COUNTS:
        details["warning"] = (
            f"{root} looks like the original Waterbirds ({ORIGINAL_FOLDER}, {ORIGINAL_COUNTS}), not the MaskTune "
            "authors' corrected version: results will not match the paper (its ERM worst-group accuracy is about "
            "60% there against 80.8% on the corrected data)")
    return ImageDataset("waterbirds", 2, splits, "waterbirds", details)


def probe(base: str, per_train_image: tuple[tuple[str, str], ...], corrected: bool) -> Probe:
    """`repro data check`'s probe for Waterbirds: `<base>/metadata.csv` + `<base>/<species>/<img>.jpg`.

    `per_train_image` lists (folder, suffix) of files that must exist for every training image (cfaug's
    CUB segmentations and CAGAN infills); `corrected` marks MaskTune's corrected release (masktune D-28).
    """

    def probe(path: Path) -> Finding:
        root = path / base
        meta = root / METADATA
        if not meta.is_file():
            return Finding("missing", "", f"{relative(meta, path)} missing")
        rows = csv_rows(meta, ("img_filename", "y", "split", "place"))
        on_disk = nested_files(root, IMAGES)
        present = [r["img_filename"] for r in rows if r["img_filename"] in on_disk]
        split = Counter(r["split"] for r in rows)
        train = [r["img_filename"].rsplit(".", 1)[0] for r in rows if r["split"] == "0"]
        cover = {folder: len({f"{stem}{suffix}" for stem in train} & nested_files(path / folder, (suffix,)))
                 for folder, suffix in per_train_image}
        counts = ", ".join([f"train {split['0']}, val {split['1']}, test {split['2']}", f"images {len(present)}"]
                           + [f"train with {folder} {n}" for folder, n in cover.items()])
        if not present:
            return Finding("missing", counts, "none of the images metadata.csv lists is on disk")
        verify_file(root / present[0])
        verify_file(root / present[-1])
        problems = [f"{len(rows) - len(present)} listed images absent"] if len(present) < len(rows) else []
        problems += [f"{folder}/ covers {n} of {len(train)} train images"
                     for folder, n in cover.items() if n < len(train)]
        original = corrected and dict(split) == {str(code): n for code, n in enumerate(ORIGINAL_COUNTS.values())}
        warning = ["split sizes equal the ORIGINAL release; MaskTune needs the corrected one (D-28)"] * original
        return Finding(state_of(not problems), counts, "; ".join(problems + warning))

    return probe
