"""Figure-grade XGradCAM overlays of best_erm and the finetuned model on fixed test images (masktune spec
§7.6): grad-cam's `show_cam_on_image` with an RGB JET heat map, on the de-normalised model input."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from repro.engine import load_weights
from repro.papers.masktune import datasets
from repro.papers.masktune.feed import IN_MEMORY, Feeder
from repro.runs.prepared import run_prepared_root
from repro.runs.store import RunRecord

FIGURE_SPLIT = {"biased_mnist": "test_biased"}


def _display(x: torch.Tensor, kind: str) -> np.ndarray:
    """Model inputs (B, 3, H, W) back to [0, 1] RGB images (B, H, W, 3)."""
    if kind not in IN_MEMORY:
        from repro.papers.masktune.pil_transforms import normalisation

        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in normalisation(kind))
        x = x * std + mean
    return x.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def overlays(erm: RunRecord, tuned: RunRecord, dataset: str, pick: Callable[[Any], np.ndarray]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(images, ERM overlays, MaskTune overlays), uint8 (k, H, W, 3), for the test images `pick` chooses, and
    each model's predicted classes {"labels", "ERM", "MaskTune"} (the labels are the true classes)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    from repro.papers.masktune.xgradcam import cam_maps

    cfg = erm.config
    ds = datasets.load(cfg.data, cfg.seed, run_prepared_root(erm))
    split = ds.splits[FIGURE_SPLIT.get(dataset, "test")]
    split = split.subset(pick(split))
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([b for b, _ in Feeder(ds.transforms, torch.device("cpu"), 64).batches(split, "eval", gen)])
    shown = _display(x, ds.transforms)
    out, preds = [], {"labels": split.labels}
    for name, record, weights in (("ERM", erm, "best"), ("MaskTune", tuned, "final")):
        model = load_weights(record, weights)
        with torch.no_grad():
            preds[name] = model(x)[0].argmax(1).numpy()
        maps = cam_maps(model, x).numpy()
        out.append(np.stack([show_cam_on_image(img.astype(np.float32), m, use_rgb=True) for img, m in zip(shown, maps)]))
    return (shown * 255).round().astype(np.uint8), out[0], out[1], preds
