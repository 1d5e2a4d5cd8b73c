"""Every image reader, on files of one picture in every bit depth and colour mode, in its on-disk layout (issue 25).

Each reader case builds its dataset's layout with every image file written by `write` and returns the pixels it
prepares for one image (0..255 scale). A file is compared with the same reader on its 8-bit RGB conversion (PIL's
`convert("RGB")` of that very file; for the 16-bit PNG, the 8-bit grey picture it widens), so lossy CMYK JPEGs
compare like for like. `test_every_image_reader_has_a_case` fails when a module opens images without a case here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from repro.data.probes import verify_file
from repro.errors import DatasetError
from repro.data.cats_dogs import load_cats_dogs
from repro.data.waterbirds import ORIGINAL_FOLDER, load_waterbirds
from repro.papers.actdiff.data_xray import prepare_xray, write_fixtures as xray_fixtures
from repro.papers.cfaug.data import load_cfaug
from repro.papers.cfaug.fixtures import write_fixtures as cfaug_fixtures
from repro.papers.masktune.feed import _Files
from repro.papers.tap.data_prepare_tagged import KNEE_GRADES, PNEU_CLASSES, prepare_knee, prepare_pneu
from repro.papers.tap.data_tagged_xray import read_images

REPO = Path(__file__).resolve().parents[2]
Write = Callable[[Path], None]


def picture(size: tuple[int, int]) -> Image.Image:
    """An RGB picture of size (w, h): red and green ramps, a blue diagonal band."""
    w, h = size
    x, y = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
    return Image.fromarray(np.stack([x, y, np.abs(x - y)], -1).round().astype(np.uint8))


def _palette(rgb: Image.Image) -> Image.Image:
    return rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)


FORMATS: dict[str, tuple[str, Callable[[Image.Image], Image.Image], dict]] = {
    "1-bit": ("PNG", lambda rgb: rgb.convert("1"), {}),
    "L": ("PNG", lambda rgb: rgb.convert("L"), {}),
    "RGB": ("PNG", lambda rgb: rgb, {}),
    "16-bit": ("PNG", lambda rgb: Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257), {}),
    "palette": ("PNG", _palette, {"transparency": 0}),
    "CMYK JPEG": ("JPEG", lambda rgb: rgb.convert("CMYK"), {"quality": 90}),
}
"""format -> (file format, the picture in that mode, save options); file names follow the layout, not the format."""


def writer(fmt: str, size: tuple[int, int]) -> Write:
    form, make, options = FORMATS[fmt]

    def write(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        make(picture(size)).save(path, format=form, **options)
    return write


def reference_writer(fmt: str, size: tuple[int, int]) -> Write:
    """Writes the 8-bit RGB conversion of what `writer(fmt, size)` writes, as PNG."""
    write = writer(fmt, size)

    def reference(path: Path) -> None:
        write(path)
        if fmt == "16-bit":
            image = picture(size).convert("L").convert("RGB")
        else:
            with Image.open(path) as im:
                image = im.convert("RGB")
        image.save(path, format="PNG")
    return reference


# ---------------------------------------------------------------- reader cases


def _pneu(root: Path, write: Write) -> np.ndarray:
    for split in ("train", "test"):
        for cls in PNEU_CLASSES:
            write(root / "chest_xray" / split / cls / f"{cls}.jpeg")
    out = prepare_pneu(root / "chest_xray", root / "pneu")  # JPEG round trip at 75, as the paper's data
    return read_images(out, pd.read_csv(out / "clean" / "train.csv"))[0][0, 0].numpy()


def _knee(root: Path, write: Write) -> np.ndarray:
    for grade in KNEE_GRADES:
        write(root / "kneeKL224" / "train" / grade / f"{grade}.png")
    out = prepare_knee(root / "kneeKL224", root / "knee")
    return read_images(out, pd.read_csv(out / "clean" / "train.csv"))[0][0, 0].numpy()


def _actdiff_xray(root: Path, write: Write) -> np.ndarray:
    """NIH and PadChest PNGs; 16-bit files keep their depth, so they compare within 1/255 of the range."""
    xray_fixtures(root, per_pool=4)
    for path in root.glob("*/images-128/*.png"):
        write(path)
    prepare_xray(root, root / "prepared", 0.9)
    x = np.load(root / "prepared" / "xray.npz")["train_images"][0, 0]
    return (x / 1024 + 1) / 2 * 255


def _waterbirds_images(root: Path, write: Write) -> Path:
    """The cfaug / MaskTune Waterbirds layout with every bird image (not the segmentations) from `write`."""
    cfaug_fixtures(root, "waterbirds", per_class=1)
    folder = root / "waterbird" / ORIGINAL_FOLDER
    for name in pd.read_csv(folder / "metadata.csv")["img_filename"]:
        write(folder / name)
    return folder


def _cfaug(root: Path, write: Write) -> np.ndarray:
    _waterbirds_images(root, write)
    x = load_cfaug("waterbirds", root, size=32).evals["val"][0]["x"]
    return ((x.permute(1, 2, 0).numpy() + 1) / 2 * 255).astype(np.float64)


def _masktune_files(root: Path, write: Write) -> np.ndarray:
    split = load_waterbirds(_waterbirds_images(root, write)).splits["test"]
    return _Files(split.files, split.labels, np.asarray)[0][0]


def _cats_dogs(root: Path, write: Write) -> np.ndarray:
    for name in ("cat.1.jpg", "dog.1.jpg"):
        write(root / "dogs-vs-cats" / "train" / name)
    data = load_cats_dogs(root / "dogs-vs-cats", image_size=24)
    split = next(s for s in data.splits.values() if "cat.1.jpg" in s.names)
    return split.images[split.names.index("cat.1.jpg")]


READERS: dict[str, tuple[tuple[int, int], Callable[[Path, Write], np.ndarray]]] = {
    "tap pneu": ((48, 40), _pneu),
    "tap knee": ((224, 224), _knee),
    "actdiff xray": ((128, 128), _actdiff_xray),
    "cfaug waterbirds": ((40, 32), _cfaug),
    "masktune files": ((40, 32), _masktune_files),
    "masktune cats_dogs": ((40, 40), _cats_dogs),
}
"""reader -> (picture size (w, h), case)."""

COVERS = {
    "repro/data/rgb_image.py": ("cfaug waterbirds", "masktune files"),
    "repro/data/cats_dogs.py": ("masktune cats_dogs",),
    "repro/data/probes.py": ("test_check_decodes_every_format",),
    "repro/papers/actdiff/data_xray.py": ("actdiff xray",),
    "repro/papers/tap/data_prepare_tagged.py": ("tap pneu", "tap knee"),
    "repro/papers/tap/data_tagged_xray.py": ("tap pneu", "tap knee"),
}
"""module that opens image files -> the cases above that read through it."""


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("reader", READERS)
def test_reader_sees_the_8bit_picture(tmp_path, reader, fmt):
    size, case = READERS[reader]
    got = case(tmp_path / "file", writer(fmt, size)).astype(np.float64)
    want = case(tmp_path / "reference", reference_writer(fmt, size)).astype(np.float64)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1 + 1e-4, f"{reader} reads the {fmt} file unlike its 8-bit RGB conversion"


@pytest.mark.parametrize("fmt", FORMATS)
def test_check_decodes_every_format(tmp_path, fmt):
    writer(fmt, (16, 16))(tmp_path / "a.png")
    verify_file(tmp_path / "a.png", (16, 16))


def test_check_refuses_values_of_no_known_depth(tmp_path):
    Image.fromarray(np.full((4, 4), 70000, np.int32)).save(tmp_path / "a.tif")
    with pytest.raises(DatasetError, match="no known bit depth"):
        verify_file(tmp_path / "a.tif")


def test_every_image_reader_has_a_case():
    """Image files are opened only in the modules of COVERS, and converted only by `repro.data.image_mode`."""
    opens, converts = set(), set()
    for path in (REPO / "repro").rglob("*.py"):
        text, rel = path.read_text(), path.relative_to(REPO).as_posix()
        if re.search(r"Image\.open\(|imread\(|read_image\(|decode_image\(", text) and rel != "repro/data/image_mode.py":
            opens.add(rel)
        if re.search(r"\.convert\(\s*[\"'](L|RGB)[\"']", text):
            converts.add(rel)
    assert opens == set(COVERS)
    assert converts == {"repro/data/image_mode.py"}
    assert {c for cases in COVERS.values() for c in cases} <= {*READERS, "test_check_decodes_every_format"}
