"""PNEU and KNEE with text tags (spec §2.2, §2.3): the user's chest X-rays (Kermany) and knee radiographs (KL
grades) as clean grey PNGs and as copies with the label's (or a permuted) text tag in a corner, with the tag boxes
as masks. The user's files are only read (the authors' scripts move and overwrite them); every random draw is
seeded (D-21, D-22) and every image is a PNG, so preparing twice gives identical bytes.

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
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont, features
from PIL import __version__ as PILLOW_VERSION

from repro.data.image_mode import to_8bit
from repro.data.image_sets import DatasetError
from repro.papers.tap.data_staging import MODES, VAL_FRACTION, box_masks, kept_rows, staged, write_meta
from repro.runs.prepared import file_sha256, files_digest, write_npy

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
    write_npy(stage / "text" / f"{mode}_masks.npy", box_masks(tops, lefts, BOX, (SIZE, SIZE)))
    pd.DataFrame({"img_path": [f"text/{mode}/{it.name}" for it in items], "label": [it.label for it in items],
                  "tag": tags}).to_csv(stage / "text" / f"{mode}.csv", index=False)


def _prepare_tagged(ds: TaggedSet, root: Path, splits: dict[str, list[Item]], out_dir: Path, seed: int,
                    rng: random.Random, limit: int | None, quality: int | None) -> Path:
    """Layout-check the chosen images, then write the clean and tagged sets, the masks and meta.json."""
    sizes = {s: len(items) for s, items in splits.items()}
    splits = {s: [items[i] for i in kept_rows(len(items), limit, seed)] for s, items in splits.items()}
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
    with staged(Path(out_dir)) as stage:
        for split, items in splits.items():
            _write_clean(ds, root, split, items, stage, quality)
        for mode in modes:
            _write_tagged(ds, mode, splits[MODES[mode][0]], stage, rng, quality)
        write_meta(stage, meta)
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
