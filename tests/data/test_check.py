"""`repro data check`: real states and counts on ../shared/data, and tiny fixtures in the official formats."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repro.data.catalog import DATASETS, dataset
from repro.data.in9 import CLASSES as IN9_CLASSES
from repro.data.check import check_all, render

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def by_name(root: Path | None) -> dict:
    return {s.name: s for s in check_all(root)}


# --- fixture writers (official on-disk formats) ------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes((0, 0, 8, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_mnist_pair(folder: Path, prefix: str, n: int) -> None:
    write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", np.zeros((n, 28, 28)))
    write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def write_image(path: Path, size: tuple[int, int] = (8, 8), mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, 128).save(path)


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def write_nifti_gz(path: Path, shape: tuple[int, int, int]) -> None:
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, *shape, 1, 1, 1, 1)
    struct.pack_into("<hh", header, 70, 16, 32)  # float32
    struct.pack_into("<f", header, 108, 352.0)
    header[344:348] = b"n+1\0"
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(bytes(header) + bytes(4) + np.random.default_rng(0).random(shape, np.float32).tobytes())


def write_msd(task: Path, n: int) -> None:
    training = [{"image": f"./imagesTr/la_{i:03d}.nii.gz", "label": f"./labelsTr/la_{i:03d}.nii.gz"} for i in range(n)]
    for entry in training:
        for key in ("image", "label"):
            write_nifti_gz(task / entry[key], (16, 16, 4))
    (task / "dataset.json").write_text(json.dumps({"training": training}))


def write_cifar(folder: Path, per_batch: int = 2) -> None:
    folder.mkdir(parents=True)
    (folder / "batches.meta").write_bytes(pickle.dumps({"num_cases_per_batch": per_batch}, protocol=2))
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": np.zeros((per_batch, 3072), np.uint8), "labels": [0] * per_batch}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


def write_svhn(folder: Path, sizes: dict[str, int], compress: bool) -> None:
    savemat = pytest.importorskip("scipy.io").savemat
    folder.mkdir(parents=True)
    for split, n in sizes.items():
        data = {"X": np.zeros((32, 32, 3, n), np.uint8), "y": np.ones((n, 1), np.uint8)}
        savemat(folder / f"{split}_32x32.mat", data, do_compression=compress)


def write_waterbirds(root: Path, with_seg: int) -> None:
    rows = ["img_id,img_filename,y,split,place,place_filename"]
    for i, split in enumerate((0, 0, 1, 2)):
        name = f"001.Albatross/bird_{i}.jpg"
        rows.append(f"{i},{name},1,{split},0,x.jpg")
        write_image(root / "waterbird_complete95_forest2water2" / name, mode="RGB")
    (root / "waterbird_complete95_forest2water2" / "metadata.csv").write_text("\n".join(rows) + "\n")
    for i in range(with_seg):
        write_image(root / "segmentations" / f"001.Albatross/bird_{i}.png")
        write_image(root / "cagan" / f"001.Albatross/bird_{i}.jpg", mode="RGB")


# --- the real shared data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared() -> dict:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    return by_name(SHARED)


def test_shared_mnist_subset(shared: dict) -> None:
    mnist = shared["mnist"]
    assert (mnist.state, mnist.counts) == ("subset", "train 5000 (5k subset), test 10000")
    assert "train-images-idx3-ubyte.gz" in mnist.detail and "torchvision" in mnist.detail


def test_shared_chest_xray(shared: dict) -> None:
    chest = shared["chest_xray"]
    assert (chest.state, chest.counts) == ("subset", "train 1341/3875, test 234/390")
    assert "train+val 5216 of 5232" in chest.detail


def test_shared_knee_val_only(shared: dict) -> None:
    knee = shared["knee_kl224"]
    assert (knee.state, knee.counts) == ("subset", "val 328/153/212/106/27")
    assert "absent: train/, test/" in knee.detail


def test_shared_dogs_vs_cats(shared: dict) -> None:
    dogs = shared["dogs_vs_cats"]
    assert (dogs.state, dogs.counts) == ("subset", "cat 500, dog 500")
    assert "1000 of 25000" in dogs.detail


def test_shared_everything_else_missing(shared: dict) -> None:
    present = {"mnist", "chest_xray", "knee_kl224", "dogs_vs_cats"}
    assert {n for n, s in shared.items() if s.state == "missing"} == {d.name for d in DATASETS} - present


def test_shared_check_is_fast() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    start = time.perf_counter()
    check_all(SHARED)
    assert time.perf_counter() - start < 2.0


# --- empty roots ---------------------------------------------------------------------------------------------


def test_empty_root_all_missing(tmp_path: Path) -> None:
    statuses = check_all(tmp_path)
    assert [s.name for s in statuses] == [d.name for d in DATASETS]
    for status in statuses:
        assert status.state == "missing"
        assert status.detail.startswith(f"{dataset(status.name).relpath}/ not found")
        assert dataset(status.name).obtain in status.detail


def test_no_root_hints_at_option_and_env() -> None:
    for status in check_all(None):
        assert status.state == "missing"
        assert "--data-root" in status.detail and "REPRO_DATA" in status.detail


def test_registry_papers_and_names() -> None:
    names = [d.name for d in DATASETS]
    assert len(names) == len(set(names))
    assert all(set(d.papers) <= {"actdiff", "tap", "cfaug", "masktune"} and d.papers for d in DATASETS)
    assert {p for d in DATASETS for p in d.papers} == {"actdiff", "tap", "cfaug", "masktune"}


# --- MNIST IDX ---------------------------------------------------------------------------------------------


def test_mnist_tiny_idx(tmp_path: Path) -> None:
    write_mnist_pair(tmp_path / "MNIST" / "raw", "train", 5)
    write_mnist_pair(tmp_path / "MNIST" / "raw", "t10k", 3)
    mnist = by_name(tmp_path)["mnist"]
    assert (mnist.state, mnist.counts) == ("subset", "train 5, test 3")
    assert mnist.detail.startswith("train 5 of 60000; test 3 of 10000")


def test_mnist_subset_layout(tmp_path: Path) -> None:
    write_mnist_pair(tmp_path / "MNIST" / "raw", "t10k", 3)
    write_mnist_pair(tmp_path / "MNIST" / "subset", "train-5k", 4)
    mnist = by_name(tmp_path)["mnist"]
    assert (mnist.state, mnist.counts) == ("subset", "train 4 (5k subset), test 3")


def test_mnist_missing_test_names_files(tmp_path: Path) -> None:
    write_mnist_pair(tmp_path / "MNIST" / "raw", "train", 5)
    mnist = by_name(tmp_path)["mnist"]
    assert mnist.state == "missing"
    assert "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz" in mnist.detail


def test_mnist_truncated_idx_is_corrupt(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw / "t10k-images-idx3-ubyte.gz", np.random.default_rng(0).integers(0, 255, (50, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.zeros(50))
    truncate(raw / "t10k-images-idx3-ubyte.gz")
    mnist = by_name(tmp_path)["mnist"]
    assert mnist.state == "corrupt"
    assert mnist.detail.startswith("raw/t10k-images-idx3-ubyte.gz: ")
    assert "Re-obtain: torchvision" in mnist.detail


def test_mnist_bad_magic_and_count_mismatch(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw / "t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.zeros((3, 1)))  # magic 0x00000802: wrong for labels
    assert "bad IDX magic 0x00000802" in by_name(tmp_path)["mnist"].detail
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.zeros(4))
    assert "3 images but 4 labels" in by_name(tmp_path)["mnist"].detail


# --- class-folder trees ------------------------------------------------------------------------------------


def test_chest_xray_missing_class_folder(tmp_path: Path) -> None:
    root = tmp_path / "chest_xray"
    write_image(root / "train" / "NORMAL" / "a.jpeg")
    for cls in ("NORMAL", "PNEUMONIA"):
        write_image(root / "test" / cls / "b.jpeg")
    chest = by_name(tmp_path)["chest_xray"]
    assert (chest.state, chest.counts) == ("missing", "train 1/0, test 1/1")
    assert "train/PNEUMONIA/" in chest.detail


def test_chest_xray_corrupt_image(tmp_path: Path) -> None:
    root = tmp_path / "chest_xray"
    for split in ("train", "test"):
        for cls in ("NORMAL", "PNEUMONIA"):
            write_image(root / split / cls / "a.jpeg", (64, 64))
    (root / "test" / "PNEUMONIA" / "a.jpeg").write_bytes(b"\xff\xd8 not a jpeg")
    chest = by_name(tmp_path)["chest_xray"]
    assert chest.state == "corrupt"
    assert chest.detail.startswith("test/PNEUMONIA/a.jpeg: cannot be decoded")


def test_knee_pooled_counts(tmp_path: Path) -> None:
    for grade in "01234":
        for i in range(int(grade) + 1):
            write_image(tmp_path / "kneeKL224" / "val" / grade / f"{i}.png")
    knee = by_name(tmp_path)["knee_kl224"]
    assert (knee.state, knee.counts) == ("subset", "val 1/2/3/4/5")
    assert knee.detail.startswith("absent: train/, test/; short: val 15 of 826")


def test_bg_challenge_totals_per_variant(tmp_path: Path) -> None:
    root = tmp_path / "bg_challenge" / "test"
    for cls in IN9_CLASSES:
        write_image(root / "original" / "val" / cls / "x.JPEG", mode="RGB")
    status = by_name(tmp_path)["bg_challenge_test"]
    assert (status.state, status.counts) == ("subset", "original/val 9")
    assert "absent: mixed_same/val/" in status.detail


def test_dogs_vs_cats_missing_class(tmp_path: Path) -> None:
    write_image(tmp_path / "dogs-vs-cats" / "train" / "cat.0.jpg", mode="RGB")
    dogs = by_name(tmp_path)["dogs_vs_cats"]
    assert (dogs.state, dogs.counts) == ("missing", "cat 1, dog 0")


# --- other formats -----------------------------------------------------------------------------------------


def test_msd_found_and_truncated(tmp_path: Path) -> None:
    task = tmp_path / "MSD" / "Task02_Heart"
    write_msd(task, 20)
    (task / "imagesTr" / "._la_000.nii.gz").write_bytes(b"AppleDouble junk")
    heart = by_name(tmp_path)["msd_heart"]
    assert (heart.state, heart.counts, heart.detail) == ("found", "training volumes 20 of 20 listed", "")
    truncate(task / "imagesTr" / "la_019.nii.gz", 0.8)
    heart = by_name(tmp_path)["msd_heart"]
    assert heart.state == "corrupt" and heart.detail.startswith("imagesTr/la_019.nii.gz: truncated")


def test_msd_subset_when_volumes_absent(tmp_path: Path) -> None:
    task = tmp_path / "MSD" / "Task03_Liver"
    write_msd(task, 3)
    (task / "labelsTr" / "la_002.nii.gz").unlink()
    liver = by_name(tmp_path)["msd_liver"]
    assert (liver.state, liver.counts) == ("subset", "training volumes 2 of 3 listed")
    assert liver.detail.startswith("2 of 131 training volumes")


def test_nih_wrong_size_is_corrupt(tmp_path: Path) -> None:
    root = tmp_path / "NIH"
    (root / "images-128").mkdir(parents=True)
    (root / "Data_Entry_2017.csv").write_text("Image Index,Finding Labels\na.png,Emphysema\nb.png,No Finding\n")
    write_image(root / "images-128" / "a.png", (128, 128))
    assert by_name(tmp_path)["nih_cxr14"].counts == "csv rows 2, images 1"
    write_image(root / "images-128" / "b.png", (1024, 1024))
    nih = by_name(tmp_path)["nih_cxr14"]
    assert nih.state == "corrupt" and nih.detail.startswith("images-128/b.png: has size (1024, 1024)")


def test_padchest_missing_column(tmp_path: Path) -> None:
    root = tmp_path / "PadChest"
    write_image(root / "images-128" / "a.png", (128, 128))
    (root / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv").write_text("ImageID,Labels\na.png,['normal']\n")
    padchest = by_name(tmp_path)["padchest"]
    assert padchest.state == "corrupt" and "lacks column(s) ViewPosition_DICOM" in padchest.detail


def test_synth2_npy(tmp_path: Path) -> None:
    root = tmp_path / "synth2"
    root.mkdir()
    for pool in (1, 2, 3):
        for kind in ("img", "seg"):
            for i in range(2):
                np.save(root / f"distractor{pool}_{kind}_{i}.npy", np.zeros((28, 28)))
    synth = by_name(tmp_path)["actdiff_synth"]
    assert (synth.state, synth.counts) == ("subset", "distractor1 2, distractor2 2, distractor3 2")
    np.save(root / "distractor3_seg_1.npy", np.zeros((28, 27)))
    assert by_name(tmp_path)["actdiff_synth"].state == "corrupt"


def test_cifar10_found_and_truncated(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py")
    cifar = by_name(tmp_path)["cifar10"]
    assert (cifar.state, cifar.counts) == ("found", "train 10, test 2")
    (tmp_path / "cifar-10-batches-py" / "data_batch_5").unlink()
    cifar = by_name(tmp_path)["cifar10"]
    assert (cifar.state, cifar.counts) == ("subset", "train 8, test 2") and "data_batch_5" in cifar.detail
    truncate(tmp_path / "cifar-10-batches-py" / "test_batch", 0.9)
    assert by_name(tmp_path)["cifar10"].state == "corrupt"


@pytest.mark.parametrize("compress", [False, True])
def test_svhn_mat_headers(tmp_path: Path, compress: bool) -> None:
    write_svhn(tmp_path / "svhn", {"train": 3, "test": 2}, compress)
    svhn = by_name(tmp_path)["svhn"]
    assert (svhn.state, svhn.counts) == ("subset", "train 3, test 2")
    truncate(tmp_path / "svhn" / "test_32x32.mat", 0.7)
    svhn = by_name(tmp_path)["svhn"]
    assert svhn.state == "corrupt" and svhn.detail.startswith("test_32x32.mat: truncated")


def test_waterbirds_coverage(tmp_path: Path) -> None:
    write_waterbirds(tmp_path / "waterbird", with_seg=1)
    birds = by_name(tmp_path)["waterbirds"]
    assert birds.state == "subset"
    assert birds.counts == "train 2, val 1, test 1, images 4, train with segmentations 1, train with cagan 1"
    assert "segmentations/ covers 1 of 2 train images" in birds.detail


def test_waterbirds_corrected_metadata_only(tmp_path: Path) -> None:
    root = tmp_path / "waterbird_corrected"
    root.mkdir()
    (root / "metadata.csv").write_text("img_id,img_filename,y,split,place\n0,001.A/x.jpg,0,0,0\n")
    birds = by_name(tmp_path)["waterbirds_corrected"]
    assert (birds.state, birds.counts) == ("missing", "train 1, val 0, test 0, images 0")


def test_celeba_nested_kaggle_layout(tmp_path: Path) -> None:
    root = tmp_path / "celeba"
    write_image(root / "img_align_celeba" / "img_align_celeba" / "000001.jpg", (178, 218), "RGB")
    (root / "list_attr_celeba.csv").write_text("image_id,Blond_Hair,Male\n000001.jpg,-1,1\n")
    (root / "list_eval_partition.csv").write_text("image_id,partition\n000001.jpg,0\n000002.jpg,2\n")
    celeba = by_name(tmp_path)["celeba"]
    assert (celeba.state, celeba.counts) == ("subset", "train 1, val 0, test 1; images 1")
    assert "nested img_align_celeba/img_align_celeba/" in celeba.detail


def test_cct_counts(tmp_path: Path) -> None:
    root = tmp_path / "cct"
    for split in ("train", "cis_val", "cis_test", "trans_test"):
        path = root / "eccv_18_annotation_files" / f"{split}_annotations.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"images": [{"id": f"{split}{i}"} for i in range(2)]}))
    write_image(root / "eccv_18_all_images_sm" / "train0.jpg", mode="RGB")
    write_image(root / "eccv_18_all_images_sm" / "cis_test1.jpg", mode="RGB")
    cct = by_name(tmp_path)["cct"]
    assert (cct.state, cct.counts) == ("subset", "train 1, cis_val 0, cis_test 1, trans_test 0; train with cagan 0")


# --- rendering ---------------------------------------------------------------------------------------------


def test_render_table(tmp_path: Path) -> None:
    from rich.console import Console

    write_mnist_pair(tmp_path / "MNIST" / "raw", "t10k", 3)
    console = Console(record=True, width=300)
    render(check_all(tmp_path), console)
    text = console.export_text()
    for word in ("dataset", "papers", "state", "counts", "chest_xray (missing) at", "chest_xray/{train,[val],test}",
                 "tap, masktune", "missing"):
        assert word in text
