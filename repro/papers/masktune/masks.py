"""The masking pass (masktune spec §4): saliency maps of the training images with the deterministic mask
transform, per-image mu + k*sigma keep masks, applied to the uint8 originals; cached once per source model
and mask settings in `<runs>/masks/<hash>/` and reused by every later run.

In-memory splits are masked in whole batches on the device and cached as `masked.npy`. File-backed splits
are masked at each original file's resolution (nearest resize, §4.4) and written as files with the
original's extension (JPEG quality 75, D-6; `masked_format: lossless_png` writes PNG instead).
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from repro.data.image_sets import ImageDataset, ImageSplit
from repro.papers.masktune.feed import Feeder
from repro.runs.prepared import runs_dir_of, write_npy
from repro.runs.store import RunRecord, atomic_write_json, atomic_write_text

DEFAULTS = {"cam": "xgradcam", "threshold_k": 2.0, "threshold_pixels": "positive", "mask_geometry": "code", "masked_format": "code"}
JPEG_QUALITY = 75  # PIL's default, what the code's save() uses (D-6)


def settings(args: dict[str, Any]) -> dict[str, Any]:
    return {k: args.get(k, v) for k, v in DEFAULTS.items()}


def cache_dir(record: RunRecord, source: str, args: dict[str, Any]) -> Path:
    """The cache folder of the masks that model `source` (a run key) makes with these mask settings."""
    blob = json.dumps({"source": source, **settings(args)}, sort_keys=True)
    return runs_dir_of(record) / "masks" / hashlib.sha256(blob.encode()).hexdigest()[:16]


def crop_box(kind: str, width: int, height: int) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) in original pixels of the region the mask transform shows the model:
    CelebA's CenterCrop(178), Waterbirds' central 224/256 after Resize((256, 256)); the whole image otherwise."""
    if kind == "celeba":
        side = min(width, height, 178)
        left, top = round((width - side) / 2), round((height - side) / 2)
        return left, top, left + side, top + side
    if kind == "waterbirds":
        return width * 16 / 256, height * 16 / 256, width * 240 / 256, height * 240 / 256
    return 0, 0, width, height


def original_keep(keep: torch.Tensor, kind: str, width: int, height: int, geometry: str) -> torch.Tensor:
    """A model-resolution keep mask at an original image's size: stretched over the whole image (`code`,
    D-5) or mapped back into the crop it was computed on, keeping everything outside (`aligned`)."""
    from repro.papers.masktune.xgradcam import resize_nearest

    if geometry == "code":
        return resize_nearest(keep, height, width)
    left, top, right, bottom = (round(v) for v in crop_box(kind, width, height))
    out = torch.ones(height, width, dtype=keep.dtype)
    out[top:bottom, left:right] = resize_nearest(keep, bottom - top, right - left)
    return out


def masked_fraction_stats(fractions: np.ndarray) -> dict[str, float]:
    """Masked-pixel fraction per image (§7.10): mean and percentiles."""
    return {"masked_fraction_mean": float(fractions.mean()),
            **{f"masked_fraction_p{q}": float(np.percentile(fractions, q)) for q in (5, 50, 95)}}


def _write_masked(path: Path, dest: Path, keep: torch.Tensor, kind: str, geometry: str) -> None:
    from PIL import Image

    from repro.data.rgb_image import open_rgb

    img = np.asarray(open_rgb(path))
    k = original_keep(keep, kind, img.shape[1], img.shape[0], geometry).numpy()
    dest.parent.mkdir(parents=True, exist_ok=True)
    out = Image.fromarray(img * k[..., None])
    if dest.suffix.lower() in (".jpg", ".jpeg"):
        out.save(dest, quality=JPEG_QUALITY)
    else:
        out.save(dest)


def saliency_keep(model: nn.Module, x: torch.Tensor, s: dict[str, Any]) -> torch.Tensor:
    """(B, H, W) uint8 keep masks of the model inputs `x`: `model`'s saliency maps (`s["cam"]`) thresholded at
    mu + k sigma (`s["threshold_k"]`, `s["threshold_pixels"]`; §4.3)."""
    from repro.papers.masktune.xgradcam import cam_maps, keep_masks

    return keep_masks(cam_maps(model, x, s["cam"]), s["threshold_k"], s["threshold_pixels"])


def compute_masks(model: nn.Module, split: ImageSplit, feeder: Feeder, s: dict[str, Any],
                  gen: torch.Generator) -> torch.Tensor:
    """(N, H, W) uint8 keep masks at model resolution for every image of `split`, in order."""
    return torch.cat([saliency_keep(model, x, s).cpu() for x, _ in feeder.batches(split, "mask", gen)])


def masked_split(model: nn.Module, split: ImageSplit, ds: ImageDataset, feeder: Feeder, cache: Path,
                 args: dict[str, Any], gen: torch.Generator) -> tuple[ImageSplit, dict[str, float]]:
    """`split` with its salient regions blacked out by `model`'s masks, from `cache` when it is complete."""
    s = settings(args)
    files = None if split.files is None else [_dest(cache, split, i, s) for i in range(len(split))]
    images = None
    if (cache / "done").exists():
        stats = json.loads((cache / "stats.json").read_text())
        if files is None:
            images = np.load(cache / "masked.npy")
    else:
        keep = compute_masks(model, split, feeder, s, gen)
        stats = {**masked_fraction_stats(1 - keep.float().mean(dim=(1, 2)).numpy()), "settings": s, "n": len(split)}
        cache.mkdir(parents=True, exist_ok=True)
        if files is None:
            images = split.images * keep.numpy()[..., None]
            write_npy(cache / "masked.npy", images)
        else:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i: _write_masked(split.files[i], files[i], keep[i], ds.transforms,
                                                      s["mask_geometry"]), range(len(split))))
        atomic_write_json(cache / "stats.json", stats)
        atomic_write_text(cache / "done", "")
    if files is not None and split.images is not None:  # Cats vs Dogs: the model sees the masked files resized
        from repro.data.cats_dogs import decode_resized  # again (§2.7)

        images = decode_resized(files, split.images.shape[1])
    return ImageSplit(split.labels, split.names, images, files), stats


def _dest(cache: Path, split: ImageSplit, i: int, s: dict[str, Any]) -> Path:
    name = Path(split.names[i])
    if s["masked_format"] == "lossless_png":
        name = name.with_suffix(".png")
    elif not name.suffix:
        name = name.with_suffix(split.files[i].suffix)
    return cache / "images" / str(int(split.labels[i])) / name.name
