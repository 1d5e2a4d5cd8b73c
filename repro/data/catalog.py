"""Registry of every dataset the four papers use, with fast on-disk checks.

Each `DatasetSpec` knows where its dataset lives under the data root, the expected layout, how to obtain
it, and how to check it quickly: files are counted with `os.scandir`, only headers are read (IDX, NIfTI,
MAT, npy, pickle ends, CSV headers, JSON indexes) and only the first and last files are decoded.
Expected counts are the full-dataset counts from the specs (`../shared/specs/*.md`).
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import pickle
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Literal, NamedTuple

from repro.errors import UserError

State = Literal["found", "subset", "missing", "corrupt"]

IMAGES = (".jpg", ".jpeg", ".png")
IN9_CLASSES = ("00_dog", "01_bird", "02_wheeled vehicle", "03_reptile", "04_carnivore", "05_insect",
               "06_musical instrument", "07_primate", "08_fish")


@dataclass(frozen=True)
class DatasetStatus:
    """Result of checking one dataset on disk."""

    name: str
    state: State
    path: Path
    counts: str
    detail: str


class DataError(UserError):
    """A file is present but is not what it should be (bad header, truncated, undecodable)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class Finding(NamedTuple):
    """What a probe saw inside an existing dataset folder."""

    state: State
    counts: str
    note: str = ""


Probe = Callable[[Path], Finding]
_HINTS = {"missing": "Obtain", "corrupt": "Re-obtain", "subset": "Full dataset"}


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: where it lives under the data root, what it looks like, how to get and check it."""

    name: str
    papers: tuple[str, ...]
    relpath: str
    layout: str
    obtain: str
    probe: Probe = field(repr=False, compare=False)

    def check(self, root: Path) -> DatasetStatus:
        """Look for this dataset under data root `root` and count what is there."""
        path = root / self.relpath
        if not path.is_dir():
            return self.status(path, Finding("missing", "", f"{self.relpath}/ not found"))
        try:
            finding = self.probe(path)
        except DataError as err:
            finding = Finding("corrupt", "", f"{_relative(err.path, path)}: {err.problem}")
        return self.status(path, finding)

    def status(self, path: Path, finding: Finding) -> DatasetStatus:
        """Turn a finding into a status whose detail says how to fix anything that is not found."""
        hint = _HINTS.get(finding.state)
        fetch = f" (`repro data download {self.name}` fetches it into the data root, or says how)"
        detail = ". ".join(filter(None, (finding.note, hint and f"{hint}: {self.obtain}{fetch}")))
        return DatasetStatus(self.name, finding.state, path, finding.counts, detail)


def _relative(path: Path, base: Path) -> str:
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


# --- small file helpers ---------------------------------------------------------------------------------


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[str]:
    """Names of the regular files in `folder` ending in one of `suffixes` (case-insensitive); [] if absent."""
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries
                    if e.name.lower().endswith(suffixes) and not e.name.startswith("._") and e.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _subdirs(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return [e.name for e in entries if e.is_dir()]


def _nested_files(root: Path, suffixes: tuple[str, ...]) -> set[str]:
    """`<subdir>/<name>` of the files one folder level below `root` (e.g. CUB species folders)."""
    if not root.is_dir():
        return set()
    return {f"{sub}/{name}" for sub in _subdirs(root) for name in _files(root / sub, suffixes)}


def _verify(path: Path, size: tuple[int, ...] | None = None) -> None:
    """Decode an image as the readers do (`to_8bit`), or read an .npy header; `size` is the expected image
    (w, h) or array shape."""
    if path.suffix == ".npy":
        got = _npy_shape(path)
    else:
        from PIL import Image

        from repro.data.image_mode import to_8bit

        try:
            with Image.open(path) as image:
                got = to_8bit(image).size
        except (OSError, SyntaxError, ValueError) as err:
            raise DataError(path, f"cannot be decoded ({err})") from err
    if size is not None and tuple(got) != size:
        raise DataError(path, f"has size {got}, expected {size}")


def _verify_ends(folder: Path, names: list[str], size: tuple[int, ...] | None = None) -> None:
    """Decode the first and the last file (by name) of a folder."""
    for name in sorted({min(names), max(names)}):
        _verify(folder / name, size)


def _npy_shape(path: Path) -> tuple[int, ...]:
    """Shape from an .npy header; the file length must match it."""
    import numpy as np

    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            start = f.tell()
    except (OSError, ValueError) as err:
        raise DataError(path, f"not an .npy file ({err})") from err
    if path.stat().st_size != start + prod(shape) * dtype.itemsize:
        raise DataError(path, "truncated (length does not match the .npy header)")
    return shape


def _gz_size(path: Path) -> int:
    """Uncompressed size mod 2**32 from the gzip trailer (ISIZE), without decompressing."""
    with path.open("rb") as f:
        f.seek(-4, os.SEEK_END)
        return struct.unpack("<I", f.read(4))[0]


def _head(path: Path, n: int) -> bytes:
    """The first `n` (uncompressed) bytes of a file, gzip or not."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(n)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(path, f"unreadable ({err})") from err
    if len(head) < n:
        raise DataError(path, "truncated header")
    return head


def _check_length(path: Path, expected: int) -> None:
    """Compare the (uncompressed) length announced by a header with the file's real one."""
    stored = _gz_size(path) if path.name.endswith(".gz") else path.stat().st_size
    if stored % 2**32 != expected % 2**32:
        raise DataError(path, f"truncated or corrupt: holds {stored} bytes, its header implies {expected}")


def _idx_count(path: Path, item_shape: tuple[int, ...]) -> int:
    """Number of items in an IDX file (.gz or raw) of uint8 items of `item_shape`; checks magic and length."""
    ndim = len(item_shape) + 1
    head = _head(path, 4 + 4 * ndim)
    if head[:4] != bytes((0, 0, 8, ndim)):
        raise DataError(path, f"bad IDX magic 0x{head[:4].hex()} (expected 0x000008{ndim:02x})")
    dims = struct.unpack(f">{ndim}I", head[4:])
    if dims[1:] != item_shape:
        raise DataError(path, f"items of shape {dims[1:]}, expected {item_shape}")
    _check_length(path, len(head) + prod(dims))
    return dims[0]


def _nifti_check(path: Path) -> None:
    """Read a .nii.gz NIfTI-1 header and compare the data size it implies with the gzip trailer."""
    head = _head(path, 348)
    order = next((o for o in "<>" if struct.unpack(f"{o}i", head[:4])[0] == 348), None)
    if order is None:
        raise DataError(path, "not a NIfTI-1 file (sizeof_hdr != 348)")
    dims = struct.unpack(f"{order}8h", head[40:56])
    bitpix = struct.unpack(f"{order}h", head[72:74])[0]
    offset = int(struct.unpack(f"{order}f", head[108:112])[0])
    _check_length(path, offset + prod(dims[1 : dims[0] + 1]) * bitpix // 8)


def _mat_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Variable shapes of a little-endian MATLAB 5 file (e.g. SVHN), read from the element headers only."""
    size = path.stat().st_size
    shapes = {}
    with path.open("rb") as f:
        head = f.read(128)
        if not head.startswith(b"MATLAB 5.0 MAT-file") or head[126:128] != b"IM":
            raise DataError(path, "not a little-endian MATLAB 5.0 MAT-file")
        pos = 128
        while pos + 8 <= size:
            f.seek(pos)
            tag = f.read(8)
            kind, nbytes = struct.unpack("<II", tag)
            if pos + 8 + nbytes > size:
                raise DataError(path, "truncated (a variable runs past the end of the file)")
            body = f.read(min(nbytes, 4096))
            try:
                body = zlib.decompressobj().decompress(body) if kind == 15 else tag + body  # 15 = miCOMPRESSED
                name, shape = _mat_matrix_header(body)
            except (zlib.error, struct.error, ValueError) as err:
                raise DataError(path, f"unreadable variable header ({err})") from err
            shapes[name] = shape
            pos += 8 + nbytes
    return shapes


def _mat_matrix_header(body: bytes) -> tuple[str, tuple[int, ...]]:
    """(name, dims) of a miMATRIX element: tag, array flags (16 bytes), dims, then the array name."""
    _, dims_bytes = struct.unpack("<II", body[24:32])
    dims = struct.unpack(f"<{dims_bytes // 4}i", body[32 : 32 + dims_bytes])
    pos = 32 + -(-dims_bytes // 8) * 8
    tag = struct.unpack("<I", body[pos : pos + 4])[0]
    if tag >> 16:  # small data element: length in the upper half, data in the next 4 bytes
        name = body[pos + 4 : pos + 4 + (tag >> 16)]
    else:
        length = struct.unpack("<I", body[pos + 4 : pos + 8])[0]
        name = body[pos + 8 : pos + 8 + length]
    return name.decode("ascii"), dims


def _require_columns(path: Path, required: Iterable[str]) -> None:
    """The header row of a CSV file must have every `required` column."""
    with path.open(newline="") as f:
        header = next(csv.reader(f), [])
    absent = [c for c in required if c not in header]
    if absent:
        raise DataError(path, f"lacks column(s) {', '.join(absent)}")


def _csv_rows(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    """All rows of a small CSV file whose header has the `required` columns."""
    _require_columns(path, required)
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _line_count(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def _missing(path: Path, names: Iterable[str]) -> list[str]:
    """Those of `names` (files, or folders when ending in '/') that do not exist under `path`."""
    return [n for n in names if not (path / n).exists()]


def _state(complete: bool) -> State:
    return "found" if complete else "subset"


def _splits(found: dict[str, int], full: dict[str, int]) -> Finding:
    """Per-split item counts compared with the full dataset's."""
    short = [f"{split} {found[split]} of {n}" for split, n in full.items() if found[split] < n]
    return Finding(_state(not short), ", ".join(f"{split} {n}" for split, n in found.items()), "; ".join(short))


# --- probes: folder trees of class folders ----------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Folders whose class subfolders are counted together (e.g. Kaggle train + val), with full counts."""

    folders: tuple[str, ...]
    expected: tuple[int, ...] | None = None  # per class; None where the specs give no count
    suffixes: tuple[str, ...] = IMAGES


def class_tree(splits: tuple[Split, ...], classes: tuple[str, ...]) -> Probe:
    """Probe for `<split>/<class>/<file>` layouts; a split with a missing class folder makes it "missing"."""

    def probe(path: Path) -> Finding:
        parts, absent, empty, short, seen = [], [], [], [], []
        for split in splits:
            present = [f for f in split.folders if (path / f).is_dir()]
            if not present:
                absent.append("|".join(f"{f}/" for f in split.folders))
            total = 0
            for folder in present:
                counts = [len(_files(path / folder / c, split.suffixes)) for c in classes]
                empty += [f"{folder}/{c}/" for c, n in zip(classes, counts, strict=True) if n == 0]
                seen += [(path / folder / c, split.suffixes) for c, n in zip(classes, counts, strict=True) if n]
                total += sum(counts)
                parts.append(f"{folder} {'/'.join(map(str, counts)) if len(classes) <= 5 else sum(counts)}")
            if present and split.expected and total < sum(split.expected):
                short.append(f"{'+'.join(split.folders)} {total} of {sum(split.expected)}")
        counts = ", ".join(parts)
        if empty:
            return Finding("missing", counts, f"class folder(s) missing or empty: {', '.join(empty)}")
        if not seen:
            return Finding("missing", "", f"none of {', '.join(absent)} found")
        for folder, suffixes in (seen[0], seen[-1]):
            _verify_ends(folder, _files(folder, suffixes))
        problems = [f"{label}: {', '.join(items)}" for label, items in (("absent", absent), ("short", short)) if items]
        return Finding(_state(not problems), counts, "; ".join(problems))

    return probe


# --- probes: one per file format --------------------------------------------------------------------------


def _idx_split(folders: tuple[Path, ...], prefix: str) -> tuple[int | None, list[str]]:
    """Item count of the `<prefix>-images-idx3-ubyte[.gz]` / `-labels-idx1-` pair, or None and the absent names."""
    found, absent = {}, []
    for kind, shape in (("images-idx3", (28, 28)), ("labels-idx1", ())):
        stem = f"{prefix}-{kind}-ubyte"
        path = next((d / n for d in folders for n in (f"{stem}.gz", stem) if (d / n).is_file()), None)
        if path is None:
            absent.append(f"{stem}.gz")
        else:
            found[kind] = (path, _idx_count(path, shape))
    if absent:
        return None, absent
    (images, n_images), (_, n_labels) = found.values()
    if n_images != n_labels:
        raise DataError(images, f"{n_images} images but {n_labels} labels")
    return n_images, []


def _mnist(path: Path) -> Finding:
    folders = (path / "raw", path)
    test, test_absent = _idx_split(folders, "t10k")
    train, train_absent = _idx_split(folders, "train")
    if test is None:
        return Finding("missing", "", f"raw/ lacks {', '.join(test_absent)}")
    if train is not None:
        return _splits({"train": train, "test": test}, {"train": 60_000, "test": 10_000})
    subset, _ = _idx_split((path / "subset",), "train-5k")
    if subset is None:
        return Finding("missing", f"test {test}", f"raw/ lacks {', '.join(train_absent)} (and no subset/train-5k-*)")
    return Finding("subset", f"train {subset} (5k subset), test {test}",
                   f"raw/ lacks {', '.join(train_absent)}; using subset/train-5k-* ({subset} of 60000 training images)")


def _dogs_vs_cats(path: Path) -> Finding:
    folder = path / "train"
    names = _files(folder, (".jpg",))
    per = Counter(n.split(".", 1)[0] for n in names)
    counts = f"cat {per['cat']}, dog {per['dog']}"
    if not per["cat"] or not per["dog"]:
        return Finding("missing", counts, "train/ lacks cat.<n>.jpg or dog.<n>.jpg files")
    _verify_ends(folder, [n for n in names if n.startswith(("cat.", "dog."))])
    complete = per["cat"] >= 12_500 and per["dog"] >= 12_500
    return Finding(_state(complete), counts, "" if complete else f"{per['cat'] + per['dog']} of 25000 images")


def _synth2(path: Path) -> Finding:
    names = _files(path, (".npy",))
    per = Counter(n.rsplit("_", 1)[0] for n in names)
    groups = [f"distractor{p}_{k}" for p in (1, 2, 3) for k in ("img", "seg")]
    counts = ", ".join(f"distractor{p} {per[f'distractor{p}_img']}" for p in (1, 2, 3))
    if not any(per[g] for g in groups):
        return Finding("missing", "", "no distractor{1,2,3}_{img,seg}_<i>.npy files")
    _verify_ends(path, [n for n in names if n.rsplit("_", 1)[0] in groups], (28, 28))
    short = [g for g in groups if per[g] < 512]
    return Finding(_state(not short), counts, f"fewer than 512 files in {', '.join(short)}" if short else "")


def msd_task(expected: int) -> Probe:
    """Probe for a Medical Segmentation Decathlon task folder with `expected` training volumes."""

    def probe(path: Path) -> Finding:
        meta = path / "dataset.json"
        if not meta.is_file():
            return Finding("missing", "", "dataset.json missing")
        try:
            pairs = [(e["image"].removeprefix("./"), e["label"].removeprefix("./"))
                     for e in json.loads(meta.read_text())["training"]]
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise DataError(meta, f"has no usable 'training' list ({err})") from err
        present = {f"{d}/{n}" for d in ("imagesTr", "labelsTr") for n in _files(path / d, (".nii.gz",))}
        complete = [image for image, label in pairs if image in present and label in present]
        counts = f"training volumes {len(complete)} of {len(pairs)} listed"
        if not complete:
            return Finding("missing", counts, "imagesTr/ and labelsTr/ lack the volumes dataset.json lists")
        for image in sorted({complete[0], complete[-1]}):
            _nifti_check(path / image)
        done = len(complete) >= expected
        return Finding(_state(done), counts, "" if done else f"{len(complete)} of {expected} training volumes")

    return probe


def csv_images(table: str, columns: tuple[str, ...], images: str, expected: int | None) -> Probe:
    """Probe for a label CSV plus a flat folder of 128×128 PNGs (NIH ChestX-ray14, PadChest)."""

    def probe(path: Path) -> Finding:
        absent = _missing(path, (table, f"{images}/"))
        if absent:
            return Finding("missing", "", f"missing {', '.join(absent)}")
        _require_columns(path / table, columns)
        rows = _line_count(path / table) - 1
        names = _files(path / images, (".png",))
        counts = f"csv rows {rows}, images {len(names)}"
        if not names:
            return Finding("missing", counts, f"{images}/ holds no .png")
        _verify_ends(path / images, names, (128, 128))
        target = expected or rows
        done = len(names) >= target
        return Finding(_state(done), counts, "" if done else f"{len(names)} of {target} images")

    return probe


def _celeba(path: Path) -> Finding:
    nested = path / "img_align_celeba" / "img_align_celeba"
    folder = nested if nested.is_dir() else path / "img_align_celeba"
    absent = _missing(path, ("list_attr_celeba.csv", "list_eval_partition.csv", "img_align_celeba/"))
    if absent:
        return Finding("missing", "", f"missing {', '.join(absent)}")
    _require_columns(path / "list_attr_celeba.csv", ("image_id", "Blond_Hair", "Male"))
    split = Counter(r["partition"] for r in _csv_rows(path / "list_eval_partition.csv", ("image_id", "partition")))
    names = _files(folder, (".jpg",))
    counts = f"train {split['0']}, val {split['1']}, test {split['2']}; images {len(names)}"
    if not names:
        return Finding("missing", counts, f"{_relative(folder, path)}/ holds no .jpg")
    _verify_ends(folder, names)
    done = len(names) >= 202_599 and (split["0"], split["1"], split["2"]) == (162_770, 19_867, 19_962)
    note = "" if done else f"{len(names)} of 202599 images"
    if folder == nested:
        note = "; ".join(filter(None, (note, "nested img_align_celeba/img_align_celeba/ (Kaggle zip; masktune D-21)")))
    return Finding(_state(done), counts, note)


_WB_ORIGINAL = {"0": 4795, "1": 1199, "2": 5794}  # Sagawa et al.'s release, split 0/1/2 = train/val/test


def waterbirds(base: str, per_train_image: tuple[tuple[str, str], ...], corrected: bool) -> Probe:
    """Probe for Waterbirds: `<base>/metadata.csv` + `<base>/<species>/<img>.jpg`.

    `per_train_image` lists (folder, suffix) of files that must exist for every training image (cfaug's
    CUB segmentations and CAGAN infills); `corrected` marks MaskTune's corrected release (masktune D-28).
    """

    def probe(path: Path) -> Finding:
        root = path / base
        meta = root / "metadata.csv"
        if not meta.is_file():
            return Finding("missing", "", f"{_relative(meta, path)} missing")
        rows = _csv_rows(meta, ("img_filename", "y", "split", "place"))
        on_disk = _nested_files(root, IMAGES)
        present = [r["img_filename"] for r in rows if r["img_filename"] in on_disk]
        split = Counter(r["split"] for r in rows)
        train = [r["img_filename"].rsplit(".", 1)[0] for r in rows if r["split"] == "0"]
        cover = {folder: len({f"{stem}{suffix}" for stem in train} & _nested_files(path / folder, (suffix,)))
                 for folder, suffix in per_train_image}
        counts = ", ".join([f"train {split['0']}, val {split['1']}, test {split['2']}", f"images {len(present)}"]
                           + [f"train with {folder} {n}" for folder, n in cover.items()])
        if not present:
            return Finding("missing", counts, "none of the images metadata.csv lists is on disk")
        _verify(root / present[0])
        _verify(root / present[-1])
        problems = [f"{len(rows) - len(present)} listed images absent"] if len(present) < len(rows) else []
        problems += [f"{folder}/ covers {n} of {len(train)} train images"
                     for folder, n in cover.items() if n < len(train)]
        original = corrected and dict(split) == _WB_ORIGINAL
        warning = ["split sizes equal the ORIGINAL release; MaskTune needs the corrected one (D-28)"] * original
        return Finding(_state(not problems), counts, "; ".join(problems + warning))

    return probe


_CCT_SPLITS = {"train": 13_553, "cis_val": 3_484, "cis_test": 15_827, "trans_test": 23_275}


def _cct(path: Path) -> Finding:
    notes = path / "eccv_18_annotation_files"
    absent = _missing(path, [f"{notes.name}/{s}_annotations.json" for s in _CCT_SPLITS] + ["eccv_18_all_images_sm/"])
    if absent:
        return Finding("missing", "", f"missing {', '.join(absent)}")
    on_disk = set(_files(path / "eccv_18_all_images_sm", (".jpg",)))
    listed = {split: [f"{im['id']}.jpg" for im in _json_images(notes / f"{split}_annotations.json")]
              for split in _CCT_SPLITS}
    have = {split: sum(name in on_disk for name in names) for split, names in listed.items()}
    cagan = set(_files(path / "cagan", (".jpg",)))
    with_cagan = sum(name in cagan for name in listed["train"])
    counts = ", ".join(f"{s} {n}" for s, n in have.items()) + f"; train with cagan {with_cagan}"
    if not on_disk:
        return Finding("missing", counts, "eccv_18_all_images_sm/ holds no .jpg")
    _verify_ends(path / "eccv_18_all_images_sm", list(on_disk))
    problems = [f"{s} {have[s]} of {n} images" for s, n in _CCT_SPLITS.items() if have[s] < n]
    if with_cagan < len(listed["train"]):
        problems.append(f"cagan/ covers {with_cagan} of {len(listed['train'])} train images (cfaug C-16)")
    return Finding(_state(not problems), counts, "; ".join(problems))


def _json_images(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text())["images"]
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(path, f"not a COCO-style annotation file ({err})") from err


def _cifar10(path: Path) -> Finding:
    batches = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    absent = _missing(path, ["batches.meta"] + batches)
    if "batches.meta" in absent or "test_batch" in absent or all(b in absent for b in batches[:5]):
        return Finding("missing", "", f"missing {', '.join(absent)}")
    try:
        with (path / "batches.meta").open("rb") as f:
            per_batch = pickle.load(f, encoding="latin1")["num_cases_per_batch"]
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError) as err:
        raise DataError(path / "batches.meta", f"unreadable ({err})") from err
    present = [b for b in batches if b not in absent]
    for name in present:
        _pickle_ends(path / name, per_batch * 3072)
    train = per_batch * (len(present) - 1)
    note = f"missing {', '.join(absent)}" if absent else ""
    return Finding(_state(not absent), f"train {train}, test {per_batch}", note)


def _pickle_ends(path: Path, min_bytes: int) -> None:
    """A CIFAR batch pickle must hold at least its pixel bytes and end with the STOP opcode."""
    if path.stat().st_size < max(min_bytes, 1):
        raise DataError(path, "truncated pickle (shorter than its pixel data)")
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b".":
            raise DataError(path, "truncated pickle (no STOP opcode at the end)")


def _svhn(path: Path) -> Finding:
    absent = _missing(path, ("train_32x32.mat", "test_32x32.mat"))
    if absent:
        return Finding("missing", "", f"missing {', '.join(absent)}")
    sizes = {}
    for split in ("train", "test"):
        mat = path / f"{split}_32x32.mat"
        shapes = _mat_shapes(mat)
        x, y = shapes.get("X", ()), shapes.get("y", ())
        if len(x) != 4 or x[:3] != (32, 32, 3) or y[:1] != x[3:]:
            raise DataError(mat, f"variables X {x} / y {y}, expected X (32, 32, 3, N) and y (N, 1)")
        sizes[split] = x[3]
    return _splits(sizes, {"train": 73_257, "test": 26_032})


# --- the registry -----------------------------------------------------------------------------------------

_MSD_OBTAIN = "download {task}.tar from http://medicaldecathlon.com and untar it into MSD/"
_IN9_TEST = ("original", "mixed_same", "mixed_rand", "mixed_next")  # 450 per class each (cfaug §3.1)

DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        "actdiff_synth", ("actdiff",), "synth2",
        "distractor{1,2,3}_{img,seg}_{0..511}.npy, float64 28×28 (optional)",
        "optional: repro generates statistically equivalent data; for the authors' exact "
        "files copy data/synth2/ from github.com/bigtrellis2222/activmask",
        _synth2),
    *(DatasetSpec(
        f"msd_{organ.lower()}", ("actdiff",), f"MSD/{task}",
        f"MSD/{task}/{{dataset.json, imagesTr/*.nii.gz, labelsTr/*.nii.gz}}, {n} training volumes",
        _MSD_OBTAIN.format(task=task), msd_task(n))
      for organ, task, n in (("Heart", "Task02_Heart", 20), ("Liver", "Task03_Liver", 131),
                             ("Pancreas", "Task07_Pancreas", 281))),
    DatasetSpec(
        "nih_cxr14", ("actdiff",), "NIH",
        "NIH/{Data_Entry_2017.csv, images-128/<Image Index>.png} (PNGs pre-resized to 128×128)",
        "https://nihcc.app.box.com/v/ChestXray-NIHCC (Data_Entry_2017.csv, images_*.tar.gz); "
        "resize every PNG to 128×128 (bilinear) into NIH/images-128/",
        csv_images("Data_Entry_2017.csv", ("Image Index", "Finding Labels"), "images-128", 112_120)),
    DatasetSpec(
        "padchest", ("actdiff",), "PadChest",
        "PadChest/{PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv, images-128/<ImageID>.png} (16-bit, 128×128)",
        "https://bimcv.cipf.es/bimcv-projects/padchest/ (registration); resize every PNG to 128×128 keeping "
        "16 bits (bilinear) into PadChest/images-128/",
        csv_images("PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv",
                   ("ImageID", "Labels", "ViewPosition_DICOM"), "images-128", None)),
    DatasetSpec(
        "mnist", ("tap", "masktune"), "MNIST",
        "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (or subset/train-5k-*)",
        "torchvision.datasets.MNIST(root=<data root>, download=True) (writes MNIST/raw/*.gz)",
        _mnist),
    DatasetSpec(
        "chest_xray", ("tap",), "chest_xray",
        "chest_xray/{train,[val],test}/{NORMAL,PNEUMONIA}/*.jpeg",
        "kaggle datasets download -d paultimothymooney/chest-xray-pneumonia (unzip to chest_xray/), "
        "or Mendeley Data doi:10.17632/rscbjbr9sj (ChestXRay2017.zip)",
        class_tree((Split(("train", "val"), (1349, 3883)), Split(("test",), (234, 390))), ("NORMAL", "PNEUMONIA"))),
    DatasetSpec(
        "knee_kl224", ("tap",), "kneeKL224",
        "kneeKL224/{train,val,test}/{0,1,2,3,4}/*.png (224×224 grey)",
        "Mendeley Data doi:10.17632/56rmx5bjcr.1 (kneeKL224/), or the Kaggle mirror "
        "'Knee Osteoarthritis Dataset with Severity Grading'",
        class_tree((Split(("train",), (2286, 1046, 1516, 757, 173)), Split(("val",), (328, 153, 212, 106, 27)),
                    Split(("test",), (639, 296, 447, 223, 51))), ("0", "1", "2", "3", "4"))),
    DatasetSpec(
        "in9_train", ("cfaug",), "bg_challenge/train",
        "bg_challenge/train/{original/{train,val},no_fg/train,original_bbox_cf_cagan/train}/<class>/<img>",
        "original and no_fg: Dropbox links in the github.com/MadryLab/backgrounds_challenge README; "
        "CAGAN infills: the cfaug authors' Google-Drive tarball (cfaug C-16)",
        class_tree((Split(("original/train",), (5045,) * 9), Split(("original/val",)), Split(("no_fg/train",)),
                    Split(("original_bbox_cf_cagan/train",))), IN9_CLASSES)),
    DatasetSpec(
        "in9l", ("cfaug", "masktune"), "bg_challenge/train/in9l",
        "bg_challenge/train/in9l/{train,val}/<class>/<img>",
        "in9l from the github.com/MadryLab/backgrounds_challenge README (Dropbox links reported dead: "
        "supply a copy)",
        class_tree((Split(("train",)), Split(("val",))), IN9_CLASSES)),
    DatasetSpec(
        "bg_challenge_test", ("cfaug", "masktune"), "bg_challenge/test",
        "bg_challenge/test/<variant>/val/<class>/<img> (+ fg_mask/val/<class>/*.npy)",
        "backgrounds_challenge_data.tar.gz from the GitHub releases of MadryLab/backgrounds_challenge; "
        "untar it into bg_challenge/test/",
        class_tree(tuple(Split((f"{v}/val",), (450,) * 9) for v in _IN9_TEST)
                   + tuple(Split((f"{v}/val",)) for v in ("only_fg", "no_fg", "only_bg_b", "only_bg_t"))
                   + (Split(("fg_mask/val",), suffixes=(".npy",)),), IN9_CLASSES)),
    DatasetSpec(
        "waterbirds", ("cfaug",), "waterbird",
        "waterbird/{waterbird_complete95_forest2water2/{metadata.csv,<species>/*.jpg}, "
        "segmentations/<species>/*.png, cagan/<species>/*.jpg}",
        "https://nlp.stanford.edu/data/dro/waterbird_complete95_forest2water2.tar.gz into waterbird/; CUB "
        "segmentations and CAGAN infills from the cfaug authors' Google-Drive files (cfaug C-16)",
        waterbirds("waterbird_complete95_forest2water2", (("segmentations", ".png"), ("cagan", ".jpg")), False)),
    DatasetSpec(
        "waterbirds_corrected", ("masktune",), "waterbird_corrected",
        "waterbird_corrected/{metadata.csv, <species>/*.jpg} (MaskTune's corrected release)",
        "the corrected Waterbirds from the aliasgharkhani/Masktune README (Google Drive id "
        "1xPNYQskEXuPhuqT5Hj4hXPeJa9jh7liL); unpack so metadata.csv is at waterbird_corrected/metadata.csv",
        waterbirds("", (), True)),
    DatasetSpec(
        "cct", ("cfaug",), "cct",
        "cct/{eccv_18_all_images_sm/<id>.jpg, eccv_18_annotation_files/<split>_annotations.json, cagan/<id>.jpg}",
        "https://lila.science/datasets/caltech-camera-traps: eccv_18_all_images_sm.tar.gz and "
        "eccv_18_annotations.tar.gz untarred into cct/; CAGAN infills from the cfaug authors (C-16)",
        _cct),
    DatasetSpec(
        "celeba", ("masktune",), "celeba",
        "celeba/{list_attr_celeba.csv, list_eval_partition.csv, img_align_celeba/<id>.jpg}",
        "kaggle datasets download -d jessicali9530/celeba-dataset (unzip into celeba/)",
        _celeba),
    DatasetSpec(
        "cifar10", ("masktune",), "cifar-10-batches-py",
        "cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}",
        "torchvision.datasets.CIFAR10(root=<data root>, download=True)",
        _cifar10),
    DatasetSpec(
        "svhn", ("masktune",), "svhn",
        "svhn/{train_32x32.mat, test_32x32.mat}",
        "torchvision.datasets.SVHN(root=<data root>/svhn, split='train' and 'test', download=True)",
        _svhn),
    DatasetSpec(
        "dogs_vs_cats", ("masktune",), "dogs-vs-cats",
        "dogs-vs-cats/train/{cat,dog}.<n>.jpg (Kaggle train.zip)",
        "kaggle competitions download -c dogs-vs-cats; unzip train.zip into dogs-vs-cats/",
        _dogs_vs_cats),
)

_BY_NAME = {spec.name: spec for spec in DATASETS}


def dataset(name: str) -> DatasetSpec:
    """The registered dataset called `name`."""
    if name not in _BY_NAME:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(_BY_NAME)}")
    return _BY_NAME[name]
