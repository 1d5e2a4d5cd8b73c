"""Derived data of the TAP paper (spec §2): decoy MNIST, PNEU and KNEE with text tags, their clean variants
and the teacher hold-out split.

The user's files are only read (the authors' scripts move and overwrite them); everything is written under
the output folder, through a staging folder, so a failure leaves nothing half-written. Every random draw is
seeded (D-21, D-22) and every image is a PNG, so preparing twice gives identical bytes. Each dataset folder
has a `meta.json` with the seed, the sources, the counts and a fingerprint of the files written.

Layout of a PNEU or KNEE output folder (`img_path` is relative to it; row i of a CSV is mask i):

    clean/{train,val,test}/<stem>.png        grey images (PNEU: centre-cropped, 224 px, JPEG round trip)
    clean/{train,val,test}.csv               img_path,label,source (source: the user's file)
    text/{train,val,test,test_cor}/<stem>.png
    text/{train,val,test,test_cor}.csv       img_path,label,tag
    text/{train,val,test,test_cor}_masks.npy uint8 (N, 224, 224), 1 on the 22x44 tag box
    meta.json

train and test_cor carry the label's tag, val and test the permuted one (PNEU swapped, KNEE random); the
text rows of a split are in the order of its clean rows, so one index addresses the same image in both.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont, features
from PIL import __version__ as PILLOW_VERSION

from repro.data.image_mode import to_8bit
from repro.data.image_sets import DatasetError
from repro.data.mnist_files import SUBSET, read_mnist, test_files, train_files
from repro.papers.tap.mnist import META
from repro.runs.prepared import content_fingerprint, file_sha256, files_digest, write_npy, write_npz

log = logging.getLogger(__name__)

PATCH = 4
STEP = 255 // 10  # MNIST patch value 255 - 25 * label (§2.1)
OFFSETS = np.array([0, 28 - PATCH])
VAL_FRACTION = 0.1  # MNIST val and the PNEU per-class val (§2.1, §2.2, D-22)

SIZE = 224
FONT_SIZE = SIZE // 10  # 22 px: min(w, h) // 10 (§2.2)
BOX = (FONT_SIZE, 2 * FONT_SIZE)  # ground-truth box, rows x columns: 22 x 44
PNEU_CLASSES = ("NORMAL", "PNEUMONIA")
PNEU_TAGS = ("ABC", "XYZ")
PNEU_EXPECTED = ("<dir>/{train,test}/{NORMAL,PNEUMONIA}/*.jpeg (Kermany v3 ChestXRay2017, or Kaggle "
                 "chest-xray-pneumonia whose val/ is pooled into train)")
KNEE_GRADES = ("0", "1", "2", "3", "4")
KNEE_TAGS = ("ABC", "DEF", "GHI", "JKL", "MNO")  # KL grade 0..4 (D-18)
KNEE_EXPECTED = ("<dir>/{train,val,test}/{0,1,2,3,4}/*.png, at least one split (Chen 2018, Mendeley "
                 "56rmx5bjcr, or Kaggle kneeKL224)")
MODES = {"train": ("train", False), "val": ("val", True), "test": ("test", True), "test_cor": ("test", False)}
"""contaminated split -> (source split, permuted), in the order the RNG stream visits them (§2.1-§2.3)."""




# ---------------------------------------------------------------- shared helpers


def fingerprint(folder: Path) -> str:
    """sha256 over the relative path and content of every file under `folder` but its `meta.json`."""
    return content_fingerprint(folder, META)


@contextmanager
def _staged(out_dir: Path) -> Iterator[Path]:
    """A scratch folder inside `out_dir`; on success its entries replace the same-named ones of `out_dir`
    (meta.json last), on failure it is removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        yield stage
        for entry in sorted(stage.iterdir(), key=lambda p: (p.name == META, p.name)):
            target = out_dir / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _write_meta(stage: Path, meta: dict) -> None:
    meta = {**meta, "fingerprint": fingerprint(stage)}
    (stage / META).write_text(json.dumps(meta, indent=2) + "\n")


def _keep(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Indices kept from a split of n items: all, or a seeded sorted draw of `limit` (tests and demos)."""
    if limit is None or n <= limit:
        return np.arange(n)
    return np.sort(np.random.RandomState(seed).choice(n, limit, replace=False))


def _boxes(tops: np.ndarray, lefts: np.ndarray, box: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """uint8 (N, H, W) masks, 1 on rows [top, top+h) x columns [left, left+w), clipped to the image."""
    rows = np.arange(shape[0])[None, :] - tops[:, None]
    cols = np.arange(shape[1])[None, :] - lefts[:, None]
    in_rows, in_cols = (rows >= 0) & (rows < box[0]), (cols >= 0) & (cols < box[1])
    return (in_rows[:, :, None] & in_cols[:, None, :]).astype(np.uint8)


# ---------------------------------------------------------------- decoy MNIST (§2.1)


def decoy(images: np.ndarray, labels: np.ndarray, rng: random.Random,
          permuted: bool) -> tuple[np.ndarray, np.ndarray]:
    """Add a 4x4 corner patch per image: value 255 - 25*label (correlated) or 255 - 25*r, r ~ U{0..9}
    (permuted); per image the row coin, then the column coin, then the value draw (§2.1).
    Returns the images and the uint8 patch-position masks."""
    draws = np.array([(rng.randint(0, 1), rng.randint(0, 1), rng.randint(0, 9) if permuted else int(y))
                      for y in labels], dtype=np.int64).reshape(-1, 3)
    pos = _boxes(OFFSETS[draws[:, 0]], OFFSETS[draws[:, 1]], (PATCH, PATCH), images.shape[1:])
    values = (255 - STEP * draws[:, 2]).astype(np.uint8)[:, None, None]
    return np.where(pos == 1, values, images), pos


def prepare_decoy_mnist(mnist_dir: Path, out_dir: Path, seed: int = 0, train_subset: bool | None = None,
                        limit: int | None = None) -> Path:
    """Write `original_mnist.npz`, `decoyed_mnist.npz` and `meta.json` into `out_dir`; returns `out_dir`.

    Uses the official training files when present, else the 5k subset (`train_subset` forces either). val =
    a seeded draw of 10% of the training images (D-21; 6,000 of 60,000 in the paper, 500 of the 5k subset),
    in draw order; train = the rest in ascending order; train and test_cor correlated, val and test permuted,
    from one `random.Random(seed)` stream. `limit` keeps a seeded subset of each split (tests, demos)."""
    mnist_dir, out_dir = Path(mnist_dir), Path(out_dir)
    img_path, lab_path, subset = train_files(mnist_dir, train_subset)
    test = test_files(mnist_dir)
    images, labels = read_mnist(img_path, lab_path)
    test_images, test_labels = read_mnist(*test)
    n = len(images)
    val_idx = np.random.RandomState(seed).choice(n, int(VAL_FRACTION * n), replace=False)
    train_idx = np.setdiff1d(np.arange(n), val_idx)
    idx = {"train": train_idx, "val": val_idx, "test": np.arange(len(test_labels))}
    sizes = {s: len(i) for s, i in idx.items()}
    idx = {s: i[_keep(len(i), limit, seed)] for s, i in idx.items()}
    arrays = {"train": (images, labels), "val": (images, labels), "test": (test_images, test_labels)}
    clean = {s: (arrays[s][0][i], arrays[s][1][i]) for s, i in idx.items()}
    rng = random.Random(seed)
    decoyed: dict[str, np.ndarray] = {}
    for mode, (source, permuted) in MODES.items():
        x, y = clean[source]
        decoyed[f"{mode}_images"], decoyed[f"decoy_positions_{mode}"] = decoy(x, y, rng, permuted)
        decoyed[f"{mode}_labels"] = y
    note = (f"official train-images-idx3-ubyte.gz absent: the {n:,}-image subset {SUBSET[0]} is used, with the "
            f"same seeded 10% val rule ({sizes['val']:,} of {n:,}; the paper: 6,000 of 60,000)"
            if subset else "official MNIST training files")
    log.info("decoy MNIST: %s", note)
    sources = dict(zip(("train_images", "train_labels", "test_images", "test_labels"),
                       (img_path, lab_path, *test)))
    meta = {"dataset": "decoy_mnist", "seed": seed, "limit": limit, "subset": subset, "note": note,
            "sources": {k: {"file": str(p), "sha256": file_sha256(p)} for k, p in sources.items()},
            "split_sizes": sizes, "counts": {m: len(decoyed[f"{m}_labels"]) for m in MODES},
            "rng": "val: numpy RandomState(seed).choice; patches: random.Random(seed), train, val, test, "
                   "test_cor; per image row coin, column coin, value (permuted)"}
    with _staged(out_dir) as stage:
        write_npz(stage / "original_mnist.npz", {f"{s}_{k}": a for s, (x, y) in clean.items()
                                                  for k, a in (("images", x), ("labels", y))})
        write_npz(stage / "decoyed_mnist.npz", decoyed)
        _write_meta(stage, meta)
    return out_dir


# ---------------------------------------------------------------- PNEU and KNEE (§2.2, §2.3)


@dataclass(frozen=True)
class Item:
    """One source image of a split and its label."""

    source: Path
    label: int

    @property
    def name(self) -> str:
        return f"{self.source.stem}.png"


@dataclass(frozen=True)
class TaggedSet:
    """What differs between PNEU and KNEE: their tags, the permuted tag rule and the clean-image step."""

    name: str
    tags: tuple[str, ...]
    permuted_tag: Callable[[int, random.Random], str]
    clean: Callable[[Image.Image], Image.Image]
    notes: tuple[str, ...]


def _scan(root: Path, splits: tuple[str, ...], required: tuple[str, ...], classes: tuple[str, ...],
          suffixes: tuple[str, ...], expected: str) -> dict[str, dict[str, list[Path]]]:
    """The sorted image files of each present split and class; a DatasetError names every missing piece."""
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; expected {expected}")
    present = [s for s in splits if (root / s).is_dir()]
    missing = [str(root / s) for s in required if s not in present]
    if not present and not required:
        missing.append(f"{root}/{{{','.join(splits)}}} (at least one split)")
    missing += [str(root / s / c) for s in present for c in classes if not (root / s / c).is_dir()]
    if missing:
        raise DatasetError(f"missing {', '.join(missing)}; expected {expected}")
    files = {s: {c: sorted(p for p in (root / s / c).iterdir() if p.suffix.lower() in suffixes)
                 for c in classes} for s in present}
    empty = [str(root / s / c) for s in present for c in classes if not files[s][c]]
    if empty:
        raise DatasetError(f"no {'/'.join(suffixes)} images in {', '.join(empty)}; expected {expected}")
    return files


def _open(path: Path | io.BytesIO) -> Image.Image:
    """The fully decoded image, or a DatasetError naming the file."""
    try:
        with Image.open(path) as im:
            im.load()
            return im
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"unreadable image {path}: {e}") from e


def _check_items(splits: dict[str, list[Item]]) -> None:
    """Every image decodes and output names are unique within a split."""
    for split, items in splits.items():
        names = Counter(it.name for it in items)
        dup = sorted(it.source.as_posix() for it in items if names[it.name] > 1)
        if dup:
            raise DatasetError(f"{split}: file names clash once written as PNG: {', '.join(dup)}")
        for it in items:
            _open(it.source)


def _jpeg(img: Image.Image, quality: int | None) -> Image.Image:
    """The image after a JPEG save and load at `quality` (the authors' files were JPEG), or itself."""
    if quality is None:
        return img
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return _open(buf)


def _save_png(img: Image.Image, path: Path) -> None:
    """A metadata-free PNG of the pixels (identical bytes for identical pixels)."""
    Image.fromarray(np.asarray(img, dtype=np.uint8)).save(path, format="PNG")


@cache
def _font() -> tuple[ImageFont.FreeTypeFont, Path]:
    """DejaVu Sans Mono Bold at 22 px, resolved through matplotlib (§2.2)."""
    from matplotlib.font_manager import FontProperties, findfont

    path = Path(findfont(FontProperties(family="DejaVu Sans Mono", weight="bold"), fallback_to_default=False))
    return ImageFont.truetype(str(path), FONT_SIZE), path


def _crop_resize_grey(img: Image.Image) -> Image.Image:
    """PNEU step 3: centre square crop of side min(w, h), bicubic resize to 224, then grey. The resize sees 8-bit
    L or RGB samples: any other mode (palette, 1-bit, 16-bit ...) is first made 8-bit RGB (`to_8bit`)."""
    img = img if img.mode in ("L", "RGB") else to_8bit(img, "RGB")
    w, h = img.size
    m = min(w, h)
    box = ((w - m) // 2, (h - m) // 2, (w + m) // 2, (h + m) // 2)
    img = img.crop(box).resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    return to_8bit(img, "L")


def _grey_224(img: Image.Image) -> Image.Image:
    """KNEE: the image as is (already 224 px), 8-bit grey (`to_8bit`)."""
    if img.size != (SIZE, SIZE):
        raise DatasetError(f"KNEE image of size {img.size}, expected {SIZE}x{SIZE}: {img.filename}")
    return to_8bit(img, "L")


def _write_clean(ds: TaggedSet, root: Path, split: str, items: list[Item], stage: Path,
                 quality: int | None) -> None:
    (stage / "clean" / split).mkdir(parents=True)
    for it in items:
        _save_png(_jpeg(ds.clean(_open(it.source)), quality), stage / "clean" / split / it.name)
    pd.DataFrame({"img_path": [f"clean/{split}/{it.name}" for it in items], "label": [it.label for it in items],
                  "source": [it.source.relative_to(root).as_posix() for it in items]}
                 ).to_csv(stage / "clean" / f"{split}.csv", index=False)


def _write_tagged(ds: TaggedSet, mode: str, items: list[Item], stage: Path, rng: random.Random,
                  quality: int | None) -> None:
    """Tag each clean image of the source split: per image the tag draw (permuted KNEE only), then the x coin,
    then the y coin (§2.2, §2.3); white text at the corner, the 22x44 box as its mask."""
    source, permuted = MODES[mode]
    font = _font()[0]
    (stage / "text" / mode).mkdir(parents=True)
    tags, corners = [], []
    for it in items:
        tag = ds.permuted_tag(it.label, rng) if permuted else ds.tags[it.label]
        x, y = rng.randint(0, 1) * (SIZE - BOX[1]), rng.randint(0, 1) * (SIZE - BOX[0])
        img = _open(stage / "clean" / source / it.name)
        ImageDraw.Draw(img).text((x, y), tag, fill=255, font=font)
        _save_png(_jpeg(img, quality), stage / "text" / mode / it.name)
        tags.append(tag)
        corners.append((y, x))
    tops, lefts = np.array(corners, dtype=np.int64).reshape(-1, 2).T
    write_npy(stage / "text" / f"{mode}_masks.npy", _boxes(tops, lefts, BOX, (SIZE, SIZE)))
    pd.DataFrame({"img_path": [f"text/{mode}/{it.name}" for it in items], "label": [it.label for it in items],
                  "tag": tags}).to_csv(stage / "text" / f"{mode}.csv", index=False)


def _prepare_tagged(ds: TaggedSet, root: Path, splits: dict[str, list[Item]], out_dir: Path, seed: int,
                    rng: random.Random, limit: int | None, quality: int | None) -> Path:
    """Layout-check the chosen images, then write the clean and tagged sets, the masks and meta.json."""
    sizes = {s: len(items) for s, items in splits.items()}
    splits = {s: [items[i] for i in _keep(len(items), limit, seed)] for s, items in splits.items()}
    _check_items(splits)
    modes = [m for m, (source, _) in MODES.items() if source in splits]
    font_path = _font()[1]
    meta = {"dataset": ds.name, "seed": seed, "limit": limit, "jpeg_quality": quality, "source_dir": str(root),
            "sources_sha256": files_digest({it.source.relative_to(root).as_posix(): it.source
                                       for items in splits.values() for it in items}),
            "split_sizes": sizes, "counts": {m: len(splits[MODES[m][0]]) for m in modes},
            "absent_splits": [s for s in ("train", "val", "test") if s not in splits],
            "tags": list(ds.tags), "box": list(BOX),
            "font": {"file": font_path.name, "sha256": file_sha256(font_path), "size_px": FONT_SIZE},
            "pillow": PILLOW_VERSION, "freetype": features.version("freetype2"), "notes": list(ds.notes)}
    with _staged(Path(out_dir)) as stage:
        for split, items in splits.items():
            _write_clean(ds, root, split, items, stage, quality)
        for mode in modes:
            _write_tagged(ds, mode, splits[MODES[mode][0]], stage, rng, quality)
        _write_meta(stage, meta)
    return Path(out_dir)


def _shuffled(items: list[Item], seed: int) -> list[Item]:
    """Rows in a seeded random order, as pandas `sample(frac=1, random_state=seed)` (D-21)."""
    return [items[i] for i in np.random.RandomState(seed).permutation(len(items))]


def _pneu_splits(files: dict[str, dict[str, list[Path]]], rng: random.Random,
                 seed: int) -> dict[str, list[Item]]:
    """val = `int(0.1 n)` files per class (NORMAL, then PNEUMONIA) sampled by `rng` from the sorted train
    files (D-22), pooled with an input val/ if there is one; train = the rest; each split shuffled (D-21)."""
    pool = {c: sorted(files["train"][c] + files.get("val", {}).get(c, [])) for c in PNEU_CLASSES}
    val = {c: set(rng.sample(pool[c], int(VAL_FRACTION * len(pool[c])))) for c in PNEU_CLASSES}
    splits = {"train": [Item(p, y) for y, c in enumerate(PNEU_CLASSES) for p in pool[c] if p not in val[c]],
              "val": [Item(p, y) for y, c in enumerate(PNEU_CLASSES) for p in pool[c] if p in val[c]],
              "test": [Item(p, y) for y, c in enumerate(PNEU_CLASSES) for p in files["test"][c]]}
    return {s: _shuffled(items, seed) for s, items in splits.items()}


PNEU = TaggedSet(
    "pneu", PNEU_TAGS, lambda label, rng: PNEU_TAGS[1 - label], _crop_resize_grey,
    ("val: int(0.1 n) per class sampled with random.Random(seed) from the sorted train files (D-22)",
     "the input is never moved; an input val/ folder is pooled into train before the draw",
     "rows of each split in a seeded random order (D-21)",
     "val and test carry the swapped tag, train and test_cor the label's tag"))
KNEE = TaggedSet(
    "knee", KNEE_TAGS, lambda label, rng: rng.choice(KNEE_TAGS), _grey_224,
    ("splits as given in the input, val = its own val split (D-11); rows sorted by grade, then file name",
     "random.Random(seed) seeds the tag and corner draws that create_knee.py leaves unseeded (D-21)",
     "val and test carry a uniformly random tag, train and test_cor the grade's tag"))


def prepare_pneu(chest_xray_dir: Path, out_dir: Path, seed: int = 0, jpeg_quality: int | None = 75,
                 limit: int | None = None) -> Path:
    """Write the clean and text-tagged PNEU sets (§2.2) into `out_dir` (layout: module docstring).

    One `random.Random(seed)` stream draws the val split, then the tag corners of train, val, test and
    test_cor. `jpeg_quality` re-encodes the clean and the tagged images as JPEG at that quality before they
    are stored as PNG, as the authors' code does (75); None skips it. `limit` keeps a seeded subset of at
    most that many images per split (tests, demos)."""
    root = Path(chest_xray_dir)
    files = _scan(root, ("train", "val", "test"), ("train", "test"), PNEU_CLASSES, (".jpeg", ".jpg", ".png"),
                  PNEU_EXPECTED.replace("<dir>", str(root)))
    rng = random.Random(seed)
    return _prepare_tagged(PNEU, root, _pneu_splits(files, rng, seed), Path(out_dir), seed, rng, limit,
                           jpeg_quality)


def prepare_knee(knee_dir: Path, out_dir: Path, seed: int = 0, limit: int | None = None) -> Path:
    """Write the clean and text-tagged KNEE sets (§2.3) of each split present in `knee_dir` (any of train,
    val, test) into `out_dir` (layout: module docstring). One `random.Random(seed)` stream draws the tags and
    corners of train, val, test and test_cor. `limit` keeps a seeded subset per split (tests, demos)."""
    root = Path(knee_dir)
    files = _scan(root, ("train", "val", "test"), (), KNEE_GRADES, (".png",),
                  KNEE_EXPECTED.replace("<dir>", str(root)))
    splits = {s: [Item(p, int(g)) for g in KNEE_GRADES for p in by_grade[g]] for s, by_grade in files.items()}
    return _prepare_tagged(KNEE, root, splits, Path(out_dir), seed, random.Random(seed), limit, None)


# ---------------------------------------------------------------- all of TAP, teacher split (§2.4)

SOURCES: dict[str, tuple[tuple[str, ...], Callable[..., Path]]] = {
    "decoy_mnist": (("MNIST",), prepare_decoy_mnist),
    "pneu": (("chest_xray", "pneu/chest_xray"), prepare_pneu),
    "knee": (("kneeKL224",), prepare_knee),
}
"""output folder -> (input folders tried under the data root, in order; preparer)."""


def split_sizes(dataset: str, root: Path) -> dict[str, int]:
    """Images per split that preparing PNEU or KNEE from `root` would write, from a layout check and a listing
    of the raw files (nothing decoded, nothing written); a DatasetError names what is missing."""
    if dataset == "pneu":
        files = _scan(root, ("train", "val", "test"), ("train", "test"), PNEU_CLASSES, (".jpeg", ".jpg", ".png"),
                      PNEU_EXPECTED.replace("<dir>", str(root)))
        pool = [len(files["train"][c]) + len(files.get("val", {}).get(c, [])) for c in PNEU_CLASSES]
        val = sum(int(VAL_FRACTION * n) for n in pool)  # as `_pneu_splits`
        return {"train": sum(pool) - val, "val": val, "test": sum(len(v) for v in files["test"].values())}
    files = _scan(root, ("train", "val", "test"), (), KNEE_GRADES, (".png",), KNEE_EXPECTED.replace("<dir>", str(root)))
    return {split: sum(len(v) for v in by_grade.values()) for split, by_grade in files.items()}


def prepare_tap(data_root: Path, out_root: Path, seed: int = 0, limit: int | None = None) -> dict[str, Path]:
    """Prepare each TAP dataset whose input folder is under `data_root` into `out_root/<name>` and return
    {name: folder}; an absent dataset is skipped with a log line, a present one with a bad layout raises
    DatasetError. `limit` is passed on (tests, demos)."""
    data_root, out_root = Path(data_root), Path(out_root)
    prepared = {}
    for name, (folders, prepare) in SOURCES.items():
        found = next((data_root / f for f in folders if (data_root / f).is_dir()), None)
        if found is None:
            log.info("TAP %s skipped: none of %s under %s", name, ", ".join(folders), data_root)
            continue
        prepared[name] = prepare(found, out_root / name, seed=seed, limit=limit)
    return prepared


def teacher_split(n: int, frac: float, seed: int, student_set: str = "remainder") -> tuple[list[int], list[int]]:
    """Row indices of a split of n images for the clean teacher and for the student (§2.4).

    Teacher: `random.Random(seed).sample(range(n), int(n * frac))`, as `pretrain.py --frac` (applied to train,
    val and test alike). Student: the remaining rows in ascending order (`student_set="remainder"`, the paper,
    default per D-10) or all rows (`"full"`, the code). Clean and tagged rows share indices."""
    teacher = random.Random(seed).sample(range(n), int(n * frac))
    if student_set == "full":
        return teacher, list(range(n))
    if student_set != "remainder":
        raise ValueError(f"student_set must be 'remainder' or 'full', not {student_set!r}")
    held = set(teacher)
    return teacher, [i for i in range(n) if i not in held]
