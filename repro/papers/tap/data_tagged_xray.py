"""PNEU and KNEE tensors for training, from a prepared folder (TAP spec §2.2-2.3; the layout is in the
docstring of `repro.papers.tap.data_prepare_tagged`).

Images stay uint8 grey (N, 1, H, W) on the device; `transform` replicates a batch to 3 channels and
normalises it with the dataset's own mean/std (no ImageNet statistics, D-12), as the code's
`convert('RGB')` + ToTensor + Normalize.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from repro.data.image_mode import to_8bit
from repro.papers.tap.annotations import training_mask
from repro.data.registry import TrainData, register_dataset
from repro.papers.tap.data_prepare import teacher_split
from repro.papers.tap.data_layout import META
from repro.runs.prepared import is_prepared, runs_dir_of_prepared

STATS = {"pneu": (0.5711, 0.1523), "knee": (0.5549, 0.2232)}  # hand-calculated loader statistics (§2.2, §2.3)
SUBSET_SEED = 0  # train_limit / eval_limit draw the same rows for every run (KNEE rows are sorted by grade)
EVALS = {"valid": "val", "test": "test", "test_cor": "test_cor"}
"""evaluation split -> tagged split: the permuted val and test, the correlated test (§2.2-2.3)."""


def normalise(x: Tensor, mean: float, std: float) -> Tensor:
    """uint8 grey (B, 1, H, W) -> float (B, 3, H, W): /255, then (x - mean) / std on every channel."""
    return ((x.float() / 255 - mean) / std).expand(-1, 3, -1, -1)


def _missing(folder: Path, path: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"prepared TAP data incomplete: {path} is missing (folder {folder}). Prepare PNEU / KNEE from the raw "
        f"files with `repro data prepare tap --data-root DIR` (DIR holding chest_xray/ and kneeKL224/ with their "
        f"train, val and test splits); `repro data check` shows what is found.")


def _labels(folder: Path, part: str, split: str) -> pd.DataFrame:
    """The rows (img_path, label, ...) of `part/split.csv` ("clean" or "text")."""
    csv = folder / part / f"{split}.csv"
    if not csv.exists():
        raise _missing(folder, csv)
    return pd.read_csv(csv)


def _grey(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(to_8bit(image, "L"))


def read_grey(folder: Path, paths: pd.Series) -> np.ndarray:
    """uint8 (N, H, W): the images at `folder / path` as 8-bit grey (`to_8bit`)."""
    return np.stack([_grey(folder / p) for p in paths])


def read_images(folder: Path, rows: pd.DataFrame) -> tuple[Tensor, Tensor]:
    """Images uint8 (N, 1, H, W) and labels (N,) of the given CSV rows."""
    images = read_grey(folder, rows["img_path"])
    return torch.from_numpy(images).unsqueeze(1), torch.tensor(rows["label"].to_numpy(), dtype=torch.long)


def _eval_split(folder: Path, part: str, split: str, limit: int | None, size: int | None) -> tuple[Tensor, Tensor]:
    rows = _labels(folder, part, split)
    x, y = read_images(folder, rows.iloc[_subset(len(rows), limit).numpy()])
    return resize(x, None, size)[0], y


def read_masks(folder: Path, split: str, rows: Tensor) -> Tensor:
    """The ground-truth tag boxes (N, 1, H, W) bool of the given rows."""
    path = folder / "text" / f"{split}_masks.npy"
    if not path.exists():
        raise _missing(folder, path)
    return torch.from_numpy(np.load(path, mmap_mode="r")[rows.numpy()]).unsqueeze(1).bool()


def _subset(n: int, limit: int | None) -> Tensor:
    """All rows, or a fixed seeded sorted draw of `limit` of them."""
    if not limit or n <= limit:
        return torch.arange(n)
    return torch.from_numpy(np.sort(np.random.RandomState(SUBSET_SEED).choice(n, limit, replace=False)))


def _student_rows(n: int, spec: dict[str, Any] | None) -> Tensor:
    """The training rows of a teacher or a student (§2.4, D-10): `{"role", "frac", "seed", "student_set"}`."""
    if not spec:
        return torch.arange(n)
    if spec["role"] not in ("teacher", "student"):
        raise ValueError(f"train_rows role must be 'teacher' or 'student', not {spec['role']!r}")
    teacher, student = teacher_split(n, spec["frac"], spec["seed"], spec.get("student_set", "remainder"))
    return torch.tensor(teacher if spec["role"] == "teacher" else student, dtype=torch.long)


def resize(x: Tensor, mask: Tensor | None, size: int | None) -> tuple[Tensor, Tensor | None]:
    """Downscale images by area interpolation (kept uint8) and masks by max-pooling, so a box stays a box."""
    if not size or x.shape[-1] == size:
        return x, mask
    small = F.interpolate(x.float(), size=(size, size), mode="area").round().to(torch.uint8)
    return small, None if mask is None else downscale_mask(mask, size)


def downscale_mask(mask: Tensor, size: int) -> Tensor:
    """(N, 1, H, W) boxes at `size` px by adaptive max-pooling: a pixel is set if its window touches the box."""
    return mask if mask.shape[-1] == size else F.adaptive_max_pool2d(mask.float(), size).bool()


def build_tagged_xray(dataset: str, seed: int, device: torch.device, prepared: Path,
                      variant: str = "contaminated", fingerprint: str = "", annotation: dict[str, Any] | None = None,
                      train_rows: dict[str, Any] | None = None, train_limit: int | None = None,
                      eval_limit: int | None = None, image_size: int | None = None) -> TrainData:
    """Train on the tagged (`variant="contaminated"`, masks from the `annotation` source, default the
    ground-truth boxes) or the clean (`"clean"`: Base and teachers, empty mask) train split, restricted to
    the `train_rows` of a teacher/student split and to `train_limit` rows. Evaluation splits: `valid` (the
    permuted val, or the clean val for the clean variant), `test` (permuted), `test_cor` (correlated) and
    `test_clean`, each cut to `eval_limit` rows. `image_size` downscales everything (smoke and quick
    profiles; the paper's 224 px needs none).

    The annotation source gets the full-size ground-truth boxes of the selected training rows, in order, and
    the runs dir; `prepared` is `<runs>/prepared/tap/<dataset>`."""
    if variant not in ("contaminated", "clean"):
        raise ValueError(f"variant must be 'contaminated' or 'clean', not {variant!r}")
    prepared = Path(prepared)
    if not is_prepared(prepared, META):
        raise _missing(prepared, prepared / META)
    train = _labels(prepared, "clean" if variant == "clean" else "text", "train")
    rows = _student_rows(len(train), train_rows)
    rows = rows[_subset(len(rows), train_limit)]
    x, y = read_images(prepared, train.iloc[rows.numpy()])
    if variant == "contaminated":
        gt = read_masks(prepared, "train", rows)
        mask = training_mask(annotation or {"source": "gt"}, gt, seed,
                             runs_dir_of_prepared(prepared, f"tap/{dataset}")).bool()
    else:
        mask = torch.zeros_like(x, dtype=torch.bool)
    x, mask = resize(x, mask, image_size)
    splits = {**{name: ("text", split) for name, split in EVALS.items()}, "test_clean": ("clean", "test")}
    if variant == "clean":
        splits["valid"] = ("clean", "val")
    evals = {name: _eval_split(prepared, part, split, eval_limit, image_size) for name, (part, split) in splits.items()}
    mean, std = STATS[dataset]
    return TrainData(x.to(device), mask.to(device), y.to(device),
                     {k: (a.to(device), b.to(device)) for k, (a, b) in evals.items()},
                     transform=partial(normalise, mean=mean, std=std))


for _name in STATS:  # the variant and the training masks' source (ground truth, teacher, random) change values only
    register_dataset(_name, member_options=("variant", "annotation"))(partial(build_tagged_xray, _name))
