"""TAP qualitative figures: Figure 4 (contaminated examples of decoy MNIST, PNEU and KNEE with the
ground-truth box outlined) and Figure 1 (input gradients and stage activations of ResNet-18 trained with
RRR, RBR and TAP on tagged PNEU images)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repro.papers import Context, PlannedRun
from repro.report.artefacts import artefact_provenance, output_path
from repro.report.figures import new_figure, save_figure
from repro.papers.tap.data_layout import META
from repro.runs.prepared import prepared_dir, recorded
from repro.runs.store import RunStore

PREPARED = "tap"
NOT_PREPARED = "not prepared under {folder}: run `repro data prepare tap --data-root DIR` (or `repro tap figure4 " \
               "--data-root DIR`) with DIR holding {inputs}"
INPUTS = {"decoy_mnist": "MNIST/", "pneu": "chest_xray/", "knee": "kneeKL224/"}
TITLES = {"decoy_mnist": "(a) decoy MNIST", "pneu": "(b) PNEU", "knee": "(c) KNEE"}
SHOWN = {"decoy_mnist": (0, 2, 4, 7, 9), "pneu": (0, 1), "knee": (0, 1, 2, 3, 4)}
"""Labels shown per dataset: the first image of each label in the split's row order (a fixed index)."""
CLASS_NAMES = {"decoy_mnist": [f"digit {d}" for d in range(10)], "pneu": ["normal", "pneumonia"],
               "knee": [f"KL {g}" for g in range(5)]}
SPLITS = {"correlated": ("test_cor", "train"), "permuted": ("test", "val")}
"""Per row, the splits tried in order: test_cor and test hold the same images, so the two rows show the same
pictures with the label's and the permuted contamination; train and val stand in when only they are prepared."""


@dataclass(frozen=True)
class Examples:
    """The shown images of one split: uint8 images and GT masks (k, H, W), labels, row indices, captions."""

    split: str
    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    captions: list[str]


def box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the bounding box of a non-empty 2-D mask."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def outline_box(ax: Any, box: tuple[int, int, int, int], color: str = "red") -> Any:
    """A rectangle around the pixels of `box` (pixel edges at +-0.5 of the pixel centres)."""
    from matplotlib.patches import Rectangle

    top, left, height, width = box
    return ax.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False, edgecolor=color, lw=1.2))


def _first_of_labels(labels: np.ndarray, shown: tuple[int, ...]) -> np.ndarray:
    """Row index of the first image of each shown label that the split has."""
    return np.array([int(np.flatnonzero(labels == y)[0]) for y in shown if (labels == y).any()], dtype=np.int64)


def _mnist_examples(folder: Path, split: str) -> Examples | None:
    data = np.load(folder / "decoyed_mnist.npz")
    if f"{split}_images" not in data:
        return None
    labels = data[f"{split}_labels"]
    idx = _first_of_labels(labels, SHOWN["decoy_mnist"])
    images, masks = data[f"{split}_images"][idx], data[f"decoy_positions_{split}"][idx]
    values = [int(img[m == 1].max()) for img, m in zip(images, masks)]
    captions = [f"{CLASS_NAMES['decoy_mnist'][y]}, patch {v}" for y, v in zip(labels[idx], values)]
    return Examples(split, images, masks, labels[idx], idx, captions)


def _tagged_examples(folder: Path, split: str, dataset: str) -> Examples | None:
    from repro.papers.tap.data_tagged_xray import read_grey

    csv = folder / "text" / f"{split}.csv"
    if not csv.exists():
        return None
    rows = pd.read_csv(csv)
    idx = _first_of_labels(rows["label"].to_numpy(), SHOWN[dataset])
    images = read_grey(folder, rows["img_path"][idx])
    masks = np.load(folder / "text" / f"{split}_masks.npy", mmap_mode="r")[idx]
    captions = [f"{CLASS_NAMES[dataset][rows['label'][i]]}, tag {rows['tag'][i]}" for i in idx]
    return Examples(split, images, np.asarray(masks), rows["label"].to_numpy()[idx], idx, captions)


def contaminated_examples(folder: Path, dataset: str) -> dict[str, Examples | None]:
    """{"correlated": ..., "permuted": ...}: the examples of the first prepared split of each row, or None."""
    read = _mnist_examples if dataset == "decoy_mnist" else (lambda f, s: _tagged_examples(f, s, dataset))
    out: dict[str, Examples | None] = {}
    for row, splits in SPLITS.items():
        out[row] = next((ex for ex in (read(folder, s) for s in splits) if ex is not None), None)
    return out


def figure4(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Per dataset two rows, correlated and permuted contamination, the GT box outlined in red; a dataset
    that is not prepared is a note in its row and in the provenance."""
    root = prepared_dir(ctx.runs_dir, PREPARED)
    cols = max(len(s) for s in SHOWN.values())
    fig, axes = new_figure(2 * len(SHOWN), cols, (2.1 * cols, 2.2 * 2 * len(SHOWN)))
    arrays: dict[str, np.ndarray] = {}
    datasets: dict[str, Any] = {}
    for d, dataset in enumerate(SHOWN):
        folder = root / dataset
        meta = recorded(folder, META)
        rows = contaminated_examples(folder, dataset) if meta else dict.fromkeys(SPLITS)
        info: dict[str, Any] = {"folder": str(folder)}
        if meta:
            info["fingerprint"] = meta["fingerprint"]
        for r, (row, ex) in enumerate(rows.items()):
            ax_row = axes[2 * d + r]
            for ax in ax_row:
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_frame_on(False)
            ax_row[0].set_ylabel(f"{TITLES[dataset]}\n{row}" + (f" ({ex.split})" if ex else ""), fontsize=9)
            if ex is None:
                note = (NOT_PREPARED.format(folder=folder, inputs=INPUTS[dataset]) if not meta
                        else f"no {' or '.join(SPLITS[row])} split prepared in {folder}")
                info[row] = note
                ax_row[0].text(0.02, 0.5, textwrap.fill(note, 110), transform=ax_row[0].transAxes, fontsize=7,
                               va="center")
                continue
            boxes = np.array([box_of(m) for m in ex.masks], dtype=np.int64).reshape(-1, 4)
            for ax, img, box, caption in zip(ax_row, ex.images, boxes, ex.captions):
                ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                outline_box(ax, tuple(box))
                ax.set_title(caption, fontsize=8)
            key = f"{dataset}_{row}"
            arrays.update({f"{key}_images": ex.images, f"{key}_masks": ex.masks, f"{key}_labels": ex.labels,
                           f"{key}_indices": ex.indices, f"{key}_boxes": boxes})
            info[row] = {"split": ex.split, "indices": ex.indices.tolist(), "labels": ex.labels.tolist(),
                         "captions": ex.captions}
        datasets[dataset] = info
    fig.suptitle("Contaminated examples (stored pixels, uint8); red: ground-truth box", fontsize=11)
    fig.subplots_adjust(top=0.95, hspace=0.25, wspace=0.08)
    prov = artefact_provenance(
        ctx, "figure4", runs, store, datasets=datasets,
        selection="first image of each shown label in the split's row order", shown_labels=SHOWN,
        boxes="(top, left, height, width) bounding box of each image's ground-truth mask")
    return [save_figure(fig, output_path(ctx, "figure4", "figure"), prov, arrays)]


MAP_COLUMNS = ("ig", "act1", "act2", "act3", "act4")
MAP_TITLES = {"ig": "IG |d sum log softmax / dx|",
              **{f"act{i}": f"Act {i} (stage {i} channel sum)" for i in range(1, 5)}}


def _permuted_test_images(folder: Path, indices: tuple[int, ...], size: int | None) -> tuple[Any, Any, pd.DataFrame]:
    """Rows `indices` of the prepared permuted PNEU test set: uint8 images (k, 1, H, W) and bool GT masks
    (k, 1, H, W) as the loader gives them at `size`, and their CSV rows."""
    import torch

    from repro.papers.tap.data_tagged_xray import read_images, read_masks, resize

    rows = pd.read_csv(folder / "text" / "test.csv")
    if max(indices) >= len(rows):
        raise ValueError(f"Figure 1 shows rows {list(indices)} of the permuted PNEU test set, but {folder} has only "
                         f"{len(rows)}: prepare PNEU from the full chest_xray test split (`repro data prepare tap "
                         f"--data-root DIR` into a fresh --runs-dir).")
    rows = rows.iloc[list(indices)].reset_index(drop=True)
    x, _ = read_images(folder, rows)
    x, masks = resize(x, read_masks(folder, "test", torch.tensor(indices)), size)
    return x, masks, rows


def figure1(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Rows: each shown image through the final RRR, RBR and TAP models; columns: the input with its GT box,
    IG and Act 1-4. Per image, a column shares one colour scale across the three methods."""
    from repro.papers.tap.data_tagged_xray import STATS, normalise
    from repro.engine import load_weights
    from repro.papers.tap import figure1 as fig1
    from repro.papers.tap.xray import prepared_folder, setting
    from repro.report.artefacts import done_records
    from repro.papers.tap.saliency_maps import stage_maps
    from repro.seeding import resolve_device

    device = resolve_device(ctx.device)
    lams = fig1.figure1_lambdas(ctx)
    size = setting(ctx, fig1.DATASET, "image_size")
    x, masks, rows = _permuted_test_images(prepared_folder(ctx, fig1.DATASET), fig1.IMAGES, size)
    inputs = normalise(x.to(device), *STATS[fig1.DATASET])
    records = {r.cell["method"]: rec for r, rec in done_records(runs, store)
               if r.cell["seed"] == fig1.SEED and r.cell["lambda"] == lams.get(r.cell["method"])}
    maps: dict[str, dict[str, np.ndarray]] = {}
    for method in fig1.METHODS:
        if method in records:
            model = load_weights(records[method], "final", device)
            maps[method] = {k: v.float().cpu().numpy() for k, v in stage_maps(model, inputs).items()}
    images, boxes = x[:, 0].numpy(), [box_of(m) for m in masks[:, 0].numpy()]
    # From 0 (IG and ResNet-18 stage outputs are >= 0): a min-max scale would blow tiny differences up.
    lo = {c: np.array([min([0.0] + [maps[m][c][i].min() for m in maps]) for i in range(len(images))])
          for c in MAP_COLUMNS}
    hi = {c: np.array([max([maps[m][c][i].max() for m in maps], default=1.0) for i in range(len(images))])
          for c in MAP_COLUMNS}
    n_methods, cols = len(fig1.METHODS), 1 + len(MAP_COLUMNS)
    fig, axes = new_figure(len(images) * n_methods, cols, (2.0 * cols, 2.0 * len(images) * n_methods))
    for i, (img, box) in enumerate(zip(images, boxes)):
        names = f"#{fig1.IMAGES[i]} {CLASS_NAMES['pneu'][rows['label'][i]]}, tag {rows['tag'][i]}"
        for j, method in enumerate(fig1.METHODS):
            ax_row = axes[i * n_methods + j]
            for ax in ax_row:
                ax.set_xticks([])
                ax.set_yticks([])
            lam = lams.get(method)
            ax_row[0].imshow(img, cmap="gray", vmin=0, vmax=255)
            outline_box(ax_row[0], box)
            ax_row[0].set_ylabel(f"{names}\n{method}" + (f" λ={lam:g}" if lam is not None else ""), fontsize=7)
            if method not in maps:
                ax_row[1].text(0.05, 0.5, "no done run" + (" (sweep not done)" if lam is None else ""),
                               transform=ax_row[1].transAxes, fontsize=7)
            for c, column in enumerate(MAP_COLUMNS, 1):
                if method in maps:
                    ax_row[c].imshow(maps[method][column][i], cmap="jet", vmin=lo[column][i], vmax=hi[column][i])
                    outline_box(ax_row[c], box, color="white")
                if j == 0:
                    scale = f"{lo[column][i]:.3g} to {hi[column][i]:.3g}"
                    ax_row[c].set_title(f"{MAP_TITLES[column]}\n{scale}", fontsize=7)
        axes[i * n_methods][0].set_title("input (permuted test)", fontsize=7)
    fig.suptitle(f"PNEU, ResNet-18, final weights, seed {fig1.SEED}: input gradients and stage activations "
                 f"({ctx.profile} profile; white/red: ground-truth tag box)", fontsize=10)
    fig.subplots_adjust(top=0.95, hspace=0.3, wspace=0.05)
    arrays = {"images": images, "masks": masks[:, 0].numpy(), "indices": np.array(fig1.IMAGES),
              "boxes": np.array(boxes), **{f"vmin_{c}": lo[c] for c in MAP_COLUMNS},
              **{f"vmax_{c}": hi[c] for c in MAP_COLUMNS},
              **{f"{m}_{c}": v for m, per in maps.items() for c, v in per.items()}}
    prov = artefact_provenance(
        ctx, "figure1", runs, store, lambdas=lams, weights="final", image_size=size or 224,
        shown_runs={m: rec.key for m, rec in records.items()},
        missing_methods=[m for m in fig1.METHODS if m not in maps],
        images={"split": "text/test (permuted)", "indices": list(fig1.IMAGES), "labels": rows["label"].tolist(),
                "tags": rows["tag"].tolist()},
        maps={"ig": "|d/dx sum_k log_softmax(f(x))_k| summed over the 3 input channels, eval mode",
              "act": "channel sum of each ResNet-18 stage output (layer1..layer4), nearest-upsampled to the input",
              "colour_scale": "per image and column, shared by the three methods (vmin/vmax in the npz)"})
    return [save_figure(fig, output_path(ctx, "figure1", "figure"), prov, arrays)]
