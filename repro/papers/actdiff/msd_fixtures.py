"""Small synthetic MSD task folders in exactly the official layout, for tests and the smoke profile:
`<root>/MSD/<Task>/{dataset.json, imagesTr/<prefix>_<k>.nii.gz, labelsTr/<prefix>_<k>.nii.gz}` (plus an empty
imagesTs/ as in the official tars), float32 CT-like (HU) or MRI-like images and uint8 label maps.

Every volume (SIDE x SIDE x DEPTH) holds an organ (label 1) in the slices z in ORGAN_Z, brighter than the
background and near one corner, so that even the Liver's and Pancreas' 64-px dilation leaves pixels outside, a tumour voxel (label 2) inside it at z = TUMOUR_Z, a slice with a lone tumour voxel (z = LONE_TUMOUR_Z:
positive) and one with a lone organ voxel (z = LONE_ORGAN_Z: negative, the sum is 1); the other slices are empty."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from repro.papers.actdiff.data_msd import TASKS

SIDE, DEPTH = 128, 12
ORGAN_Z = range(3, 8)
TUMOUR_Z, LONE_TUMOUR_Z, LONE_ORGAN_Z = 5, 9, 10
PREFIX = {"liver": "liver", "cardiac": "la", "pancreas": "pancreas"}  # the official file name prefixes
MODALITY = {"liver": "CT", "cardiac": "MRI", "pancreas": "CT"}
LABELS = {"liver": ("background", "liver", "cancer"), "cardiac": ("background", "left atrium"),
          "pancreas": ("background", "pancreas", "cancer")}
SUBJECTS = 6  # k = int(0.3 * 6) = 1: one train, one valid and four test volumes


def positive_slices() -> set[int]:
    """The slices a fixture volume labels positive: the organ's, the lone tumour's (not the lone organ voxel's)."""
    return set(ORGAN_Z) | {LONE_TUMOUR_Z}


def fixture_volume(task: str, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """One (image, label uint8) pair of shape (SIDE, SIDE, DEPTH): CT as int16 HU, MRI as float32, the organ a
    disc of radius 4-7 centred in [15, 35)^2."""
    seg = np.zeros((SIDE, SIDE, DEPTH), np.uint8)
    cx, cy, r = rng.randint(15, 35), rng.randint(15, 35), rng.randint(4, 8)
    xx, yy = np.mgrid[:SIDE, :SIDE]
    organ = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    for z in ORGAN_Z:
        seg[..., z][organ] = 1
    if len(LABELS[task]) > 2:
        seg[cx, cy, TUMOUR_Z] = 2
        seg[2, 2, LONE_TUMOUR_Z] = 2
    else:  # the Heart has no tumour label: two left-atrium voxels make the slice positive
        seg[2, 2:4, LONE_TUMOUR_Z] = 1
    seg[SIDE - 3, SIDE - 3, LONE_ORGAN_Z] = 1
    if MODALITY[task] == "CT":
        return (rng.normal(-300, 20, seg.shape) + 350 * (seg > 0)).round().astype(np.int16), seg
    return (rng.gamma(2.0, 60.0, seg.shape) + 400 * (seg > 0)).astype(np.float32), seg


def write_task(root: Path, task: str, subjects: int = SUBJECTS, seed: int = 0) -> Path:
    """Write one task folder under `<root>/MSD/`; returns it."""
    import nibabel as nib

    t, rng = TASKS[task], np.random.RandomState(seed)
    folder = Path(root) / "MSD" / t.folder
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    training = []
    for k in range(subjects):
        name = f"{PREFIX[task]}_{k}.nii.gz"
        image, seg = fixture_volume(task, rng)
        affine = np.diag([0.8, 0.8, 2.5, 1.0])
        nib.save(nib.Nifti1Image(image, affine), str(folder / "imagesTr" / name))
        nib.save(nib.Nifti1Image(seg, affine), str(folder / "labelsTr" / name))
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    meta = {"name": t.label, "description": "synthetic fixture in the MSD layout (repro tests)",
            "tensorImageSize": "3D", "modality": {"0": MODALITY[task]},
            "labels": {str(i): v for i, v in enumerate(LABELS[task])}, "numTraining": subjects, "numTest": 0,
            "training": training, "test": []}
    (folder / "dataset.json").write_text(json.dumps(meta, indent=4))
    return folder


def write_fixtures(root: Path, subjects: int = SUBJECTS) -> Path:
    """All three task folders under `<root>/MSD/`; returns `root`."""
    for i, task in enumerate(TASKS):
        write_task(root, task, subjects, seed=i)
    return Path(root)
