"""MSD (Medical Segmentation Decathlon) 2-D slices of the actdiff paper: Liver, Cardiac (Heart), Pancreas (spec §6).

`prepare_msd` reads an official task folder (`dataset.json`, `imagesTr/*.nii.gz`, `labelsTr/*.nii.gz`; nibabel,
an optional dependency, imported here only) and caches the selected slices once, resized, with a fingerprint, so
that training never touches NIfTI:

- each volume (X, Y, Z) is cut along its last axis into axial slices (X, Y), in z order; a slice is positive
  when the sum of its label values is > 1 (at least 2 organ voxels or 1 tumour voxel);
- volume split: the sorted image basenames, `RandomState(seed).shuffle`, k = int(0.3 N): train = [:k],
  valid = [k:2k], test = [2k:] (the code's seed is always 0, A-4);
- per split, the pooled slices (file order, then z) are sampled by a fresh `RandomState(seed)`: n/2 negatives,
  then n/2 positives, without replacement, items ordered positives first (`data_synthetic.select`);
- masks: all ones for negatives (A-16); positives: the label > 0 dilated at native resolution by a square of
  radius int(4 sigma + 0.5) (Gaussian sigma then > 0, A-15); the train split's is the one training uses, the
  valid/test ones (the code's blur is 0 there) serve the figures only;
- image, mask and label > 0 ("seg") resized with PIL's float bilinear (antialiased) to 110 px (train) or 100 px
  (valid, test); intensities stay raw (A-9: `msd_intensity=scaled` maps (x + 1024) / 2048 when building).

`build_msd` (registered as "msd") turns a prepared folder into training tensors: the 110 px train set is randomly
cropped to 100 px and flipped on the device in the training loop (`msd_augment`).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from repro.data.image_sets import DatasetError
from repro.data.registry import TrainData, register_dataset
from repro.papers.actdiff.data_synthetic import dilate, select
from repro.runs.prepared import check_fingerprint, json_fingerprint, write_npz, write_record

SPLITS = ("train", "valid", "test")
NPZ, SOURCE_JSON = "slices.npz", "source.json"
FORMAT = "msd-slices-1"  # bump when the cache's content changes


@dataclass(frozen=True)
class Task:
    """One MSD task as the paper uses it (spec §6.1, §10.1)."""

    key: str       # the Table 2 column: liver, cardiac, pancreas
    folder: str    # the official task folder under <data root>/MSD/
    volumes: int   # training volumes listed in the official dataset.json
    blur: float    # mask sigma at native resolution (base_<task>msd.yml)
    label: str     # for titles


TASKS = {t.key: t for t in (Task("liver", "Task03_Liver", 131, 16.0, "Liver"),
                            Task("cardiac", "Task02_Heart", 20, 8.0, "Cardiac"),
                            Task("pancreas", "Task07_Pancreas", 281, 16.0, "Pancreas"))}
LAYOUT = "MSD/{task}/{{dataset.json (its \"training\" list of image/label pairs), imagesTr/*.nii.gz, labelsTr/*.nii.gz}}"
OBTAIN = "download {task}.tar from http://medicaldecathlon.com and untar it into <data root>/MSD/"


def task_error(task: Task, problem: str) -> DatasetError:
    """The one-paragraph error for a missing or malformed task folder."""
    return DatasetError(f"MSD {task.label} ({task.folder}): {problem}. Expected layout: "
                        f"<data root>/{LAYOUT.format(task=task.folder)}. To obtain it: {OBTAIN.format(task=task.folder)}; "
                        "`repro data check --data-root DIR` shows what is found.")


# ---------------------------------------------------------------- reading (§6.1, §6.2)


def training_pairs(task: Task, folder: Path) -> list[tuple[str, Path, Path]]:
    """(image basename, image path, label path) of dataset.json's "training" list, sorted by basename."""
    meta = folder / "dataset.json"
    if not folder.is_dir():
        raise task_error(task, f"{folder} not found")
    if not meta.is_file():
        raise task_error(task, f"{meta} is missing")
    try:
        entries = json.loads(meta.read_text())["training"]
        pairs = [(Path(e["image"]).name, folder / e["image"], folder / e["label"]) for e in entries]
    except (ValueError, KeyError, TypeError) as e:
        raise task_error(task, f"{meta} has no usable \"training\" list of {{\"image\", \"label\"}} entries ({e})") from e
    if not pairs:
        raise task_error(task, f"{meta} lists no training volumes")
    missing = [str(p) for _, image, label in pairs for p in (image, label) if not p.is_file()]
    if missing:
        raise task_error(task, f"{len(missing)} file(s) listed in dataset.json are missing, e.g. {missing[0]}")
    return sorted(pairs)


def _nifti(task: Task, path: Path, read: Callable[[Any], Any]) -> Any:
    """`read` applied to the nibabel image of `path`; an unreadable or truncated file is a task error."""
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    try:
        return read(nib.load(str(path)))
    except (OSError, EOFError, ValueError, zlib.error, ImageFileError) as e:
        raise task_error(task, f"{path} is not a readable NIfTI volume ({type(e).__name__}: {e})") from e


def read_volume(task: Task, path: Path) -> np.ndarray:
    """A 3-D NIfTI volume as an array (X, Y, Z)."""
    data = _nifti(task, path, lambda img: np.asarray(img.dataobj))
    if data.ndim != 3:
        raise task_error(task, f"{path} has shape {data.shape}, not a 3-D (X, Y, Z) volume")
    return data


def header_shape(task: Task, path: Path) -> tuple[int, ...]:
    """A NIfTI file's shape from its header alone."""
    return _nifti(task, path, lambda img: tuple(img.shape))


def volume_labels(task: Task, image: Path, label: Path) -> np.ndarray:
    """The slice labels of a label volume, which must have its image's shape."""
    seg, shape = read_volume(task, label), header_shape(task, image)
    if shape != seg.shape:
        raise task_error(task, f"{image.name}: image {shape} and label {seg.shape} differ in shape")
    return slice_labels(seg)


def slice_labels(seg: np.ndarray) -> np.ndarray:
    """Per axial slice (last axis): 1 if the label values sum to more than 1, else 0 (int64, (Z,))."""
    return (seg.reshape(-1, seg.shape[-1]).astype(np.int64).sum(0) > 1).astype(np.int64)


def split_volumes(names: list[str], seed: int) -> dict[str, list[str]]:
    """30/30/40 by volume: the sorted names shuffled by RandomState(seed), k = int(0.3 N)."""
    files = sorted(names)
    np.random.RandomState(seed).shuffle(files)
    k = int(0.3 * len(files))
    return {"train": files[:k], "valid": files[k:2 * k], "test": files[2 * k:]}


Item = tuple[str, int, int]  # (volume basename, z, slice label)


def select_items(task: Task, labels: dict[str, np.ndarray], volumes: list[str], n: int, seed: int,
                 split: str) -> list[Item]:
    """The split's n slices: the pooled slices of its volumes (file order, then z), n/2 negatives then n/2
    positives drawn by a fresh RandomState(seed); positives first. Too few of a class is an error."""
    pool = [(v, z, int(lab)) for v in volumes for z, lab in enumerate(labels[v])]
    y = np.array([lab for _, _, lab in pool], np.int64)
    short = [f"{int((y == c).sum())} {name}" for c, name in ((0, "negative"), (1, "positive")) if (y == c).sum() < n // 2]
    if short:
        raise task_error(task, f"the {split} split ({len(volumes)} volumes) has only {' and '.join(short)} slices, "
                               f"fewer than the {n // 2} per class it needs (no resampling with replacement)")
    return [pool[i] for i in select(y, n, np.random.RandomState(seed))]


# ---------------------------------------------------------------- slices (§6.4)


def resize(a: np.ndarray, size: int) -> np.ndarray:
    """A 2-D float array resized to size x size by PIL's mode "F" bilinear resize (antialiased downscaling)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(a, np.float32), mode="F").resize((size, size),
                                                                                         Image.BILINEAR))


def roi_mask(seg: np.ndarray, label: int, blur: float) -> np.ndarray:
    """All ones for a negative slice (A-16), else label > 0 dilated by radius int(4 blur + 0.5) (float32)."""
    if not label:
        return np.ones(seg.shape, np.float32)
    organ = torch.from_numpy((seg > 0).astype(np.float32))[None, None]
    return dilate(organ, blur)[0, 0].numpy()


def extract(task: Task, files: dict[str, tuple[Path, Path]], items: list[Item], size: int) -> dict[str, np.ndarray]:
    """The items' resized images, masks and segs (N, 1, size, size) float32 and labels, reading each volume once."""
    out = {k: np.empty((len(items), 1, size, size), np.float32) for k in ("images", "masks", "segs")}
    by_volume: dict[str, list[int]] = {}
    for i, (v, _, _) in enumerate(items):
        by_volume.setdefault(v, []).append(i)
    for v, rows in by_volume.items():
        image, seg = (read_volume(task, p) for p in files[v])  # shapes checked by `volume_labels`
        for i in rows:
            _, z, label = items[i]
            s = seg[..., z]
            out["images"][i, 0] = resize(image[..., z].astype(np.float32), size)
            out["masks"][i, 0] = resize(roi_mask(s, label, task.blur), size)
            out["segs"][i, 0] = resize((s > 0).astype(np.float32), size)
    out["labels"] = np.array([lab for _, _, lab in items], np.int64)
    return out


def fingerprint(meta: dict[str, Any], items: dict[str, list[Item]]) -> str:
    """sha256 of the cache format, the selection settings and the selected (volume, z, label) per split."""
    return json_fingerprint({"format": FORMAT, **{k: meta[k] for k in ("task", "split_seed", "n", "sizes")},
                             "items": {k: [list(t) for t in v] for k, v in items.items()}})


def prepare_msd(task_key: str, folder: Path, out_dirs: dict[int, Path], n: dict[str, int],
                sizes: dict[str, int]) -> dict[int, dict[str, Any]]:
    """Cache the slices of one task folder, for each split seed in `out_dirs` (0 unless A-4 `split_seed=run_seed`),
    into `<out_dir>/slices.npz` + `source.json`; the label volumes are read once for all seeds. Returns the
    source.json records by seed."""
    task, folder = TASKS[task_key], Path(folder)
    pairs = training_pairs(task, folder)
    files = {name: (image, label) for name, image, label in pairs}
    labels = {name: volume_labels(task, image, label) for name, image, label in pairs}
    records = {}
    for seed, out_dir in out_dirs.items():
        volumes = split_volumes(list(files), seed)
        items = {s: select_items(task, labels, volumes[s], n[s], seed, s) for s in SPLITS}
        arrays = {f"{s}_{k}": v for s in SPLITS for k, v in extract(task, files, items[s], sizes[s]).items()}
        meta = {"dataset": "msd", "task": task.key, "folder": str(folder.resolve()), "split_seed": seed, "n": n,
                "sizes": sizes, "blur": task.blur, "volumes": {s: len(v) for s, v in volumes.items()},
                "slices": {s: {"total": int(sum(len(labels[v]) for v in volumes[s])),
                               "positive": int(sum(labels[v].sum() for v in volumes[s]))} for s in SPLITS},
                "split_volumes": volumes, "items": {s: [list(t) for t in v] for s, v in items.items()}}
        meta["fingerprint"] = fingerprint(meta, items)
        write_npz(out_dir / NPZ, arrays)
        write_record(out_dir, meta, SOURCE_JSON)
        records[seed] = meta
    return records


# ---------------------------------------------------------------- training tensors


def scale_intensity(x: torch.Tensor, intensity: str) -> torch.Tensor:
    """Raw intensities (code) or (x + 1024) / 2048 (A-9 `scaled`)."""
    if intensity not in ("raw", "scaled"):
        raise ValueError(f"msd_intensity must be raw or scaled, not {intensity!r}")
    return x if intensity == "raw" else (x + 1024) / 2048


def load_prepared(prepared: Path, fingerprint: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A prepared folder's source.json and arrays; a missing folder or another fingerprint is a clear error."""
    prepared = Path(prepared)
    for path in (prepared / NPZ, prepared / SOURCE_JSON):
        if not path.is_file():
            raise DatasetError(f"prepared MSD slices incomplete: {path} is missing. Prepare them from the task "
                               "folders with `repro data prepare actdiff --data-root DIR` (DIR holding "
                               f"{LAYOUT.format(task='<Task>')}), or use --profile smoke for synthetic volumes")
    meta = json.loads((prepared / SOURCE_JSON).read_text())
    check_fingerprint(prepared, meta, fingerprint, "prepared MSD slices", "run `repro data prepare actdiff` again")
    return meta, dict(np.load(prepared / NPZ))


@register_dataset("msd", member_options=("mask_train_inputs",))  # Classify Masked: slices times soft masks
def build_msd(seed: int, device: torch.device, prepared: Path, fingerprint: str = "", intensity: str = "raw",
              mask_train_inputs: bool = False) -> TrainData:
    """Train tensors at the cache's train size (cropped and flipped in the loop, `msd_augment`) with their soft
    masks; evals valid and test at the crop size, and "train" = one augmentation of the training set drawn from
    the run seed (the code evaluates its augmented train loader). Classify Masked multiplies the training images
    by their masks (negatives untouched: their masks are ones)."""
    from repro.papers.actdiff.msd_augment import CropFlip

    meta, npz = load_prepared(prepared, fingerprint)
    t = {k: torch.from_numpy(v) for k, v in npz.items()}
    x, mask, y = scale_intensity(t["train_images"], intensity), t["train_masks"], t["train_labels"]
    if mask_train_inputs:
        x = x * mask
    augment = CropFlip(meta["sizes"]["valid"])
    gen = torch.Generator().manual_seed(seed + 2_000_003)
    x_eval, _ = augment(x, mask, [gen])
    evals = {"train": (x_eval, y), **{s: (scale_intensity(t[f"{s}_images"], intensity), t[f"{s}_labels"])
                                      for s in ("valid", "test")}}
    return TrainData(x.to(device), mask.to(device), y.to(device),
                     {k: (a.to(device), b.to(device)) for k, (a, b) in evals.items()}, augment=augment)
