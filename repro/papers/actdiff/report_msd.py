"""actdiff MSD artefacts: the saliency Figures 4 (Liver, Cardiac) and 8 (Pancreas)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from repro.papers import Context, PlannedRun
from repro.papers.actdiff import plans as paper
from repro.papers.actdiff.report import msd_data, trained_model
from repro.report.artefacts import artefact_provenance, output_path
from repro.report.figures import colour_bar, new_figure, save_figure
from repro.runs.prepared import prepared_dir
from repro.runs.store import RunStore


def top_decile(saliency: np.ndarray) -> np.ndarray:
    """The map with every value below its 90th percentile set to 0 (Figs. 4 and 8 show the top 10 % of |g|)."""
    return np.where(saliency >= np.quantile(saliency, 0.9), saliency, 0.0)


def msd_pick(segs: np.ndarray, labels: np.ndarray) -> int:
    """The positive test slice with the largest organ area (the first of ties): deterministic, and never a slice
    that is positive by one tumour voxel only."""
    area = np.where(labels == 1, segs.reshape(len(segs), -1).sum(1), -1.0)
    return int(np.argmax(area))


def _msd_slice(ctx: Context, task: str) -> dict[str, Any]:
    """The task's picked test slice as the runs see it (A-9 intensity), with its organ segmentation and dilated
    mask, each (1, 1, S, S), and its index and (volume, z, label)."""
    import torch

    from repro.papers.actdiff.data_msd import load_prepared, scale_intensity
    from repro.papers.actdiff.msd_sources import msd_source

    source = msd_source(ctx, task, 0)
    _, npz = load_prepared(prepared_dir(ctx.runs_dir, source["prepared"]), source["fingerprint"])
    i = msd_pick(npz["test_segs"], npz["test_labels"])
    image = scale_intensity(torch.from_numpy(npz["test_images"][i:i + 1]), ctx.switches["msd_intensity"])
    return {"image": image.numpy(), "seg": npz["test_segs"][i:i + 1], "mask": npz["test_masks"][i:i + 1],
            "index": i, "item": source["items"]["test"][i]}


def _msd_maps(ctx: Context, runs: list[PlannedRun], store: RunStore, name: str) -> list[Path]:
    """Per task a block of 3 x 5 panels (spec §1.4, Figs. 4 and 8): input, organ segmentation and dilated mask;
    ResNet and UNet saliency of Classify, Actdiff, Gradmask and Actdiff & Gradmask (top 10 % of |g|, one colour
    scale per block); right column the UNet (Classify) reconstruction, the Reconstruct-Masked output and its
    saliency. Best-valid models (A-14), the A-13 saliency kind; the arrays behind every panel are saved."""
    import torch

    from repro.papers.actdiff.data_msd import TASKS
    from repro.papers.actdiff.msd_sources import synthetic
    from repro.papers.actdiff.saliency import saliency_maps

    kind, tasks = ctx.switches["saliency"], paper.FIGURE_TASKS[name]
    fig, axes = new_figure(3 * len(tasks), 5, (14, 8.4 * len(tasks)))
    arrays: dict[str, np.ndarray] = {}
    picks = {}
    for b, task in enumerate(tasks):
        data = _msd_slice(ctx, task)
        picks[task] = {"split": "test", "index": data["index"], "volume, z, label": data["item"]}
        x = torch.from_numpy(data["image"])
        models = {cell: trained_model(ctx, runs, store, *cell, task) for cell in paper.MAP_PANELS}
        shown = {}
        for (model, method), net in models.items():
            maps = saliency_maps(net, x)
            key = f"{task}_{model}_{method}".replace(" ", "_").replace("&", "and")
            for k, v in maps.items():
                arrays[f"{key}_{k}"] = v[0, 0].numpy()
            shown[(model, method)] = arrays[f"{key}_shown"] = top_decile(maps[kind][0, 0].numpy())
        with torch.no_grad():
            recon = {k: models[("UNet", k)](x)[1][0, 0].numpy() for k in ("Classify", "Reconstruct Masked")}
        arrays |= {f"{task}_image": data["image"][0, 0], f"{task}_seg": data["seg"][0, 0],
                   f"{task}_mask": data["mask"][0, 0], f"{task}_UNet_reconstruction": recon["Classify"],
                   f"{task}_UNet_Reconstruct_Masked_output": recon["Reconstruct Masked"]}
        vmax = max(float(m.max()) for m in shown.values()) or 1.0  # one colour scale across the block's maps
        layout = {(0, 0): (f"input (test #{data['index']}, positive)", data["image"][0, 0], "gray"),
                  (0, 1): ("organ segmentation", data["seg"][0, 0], "gray"),
                  (0, 2): (f"dilated mask (sigma {TASKS[task].blur:g})", data["mask"][0, 0], "gray"),
                  (0, 4): ("UNet reconstruction", recon["Classify"], "gray"),
                  (1, 4): ("Reconstruct Masked output", recon["Reconstruct Masked"], "gray"),
                  (2, 4): ("Reconstruct Masked saliency", shown[("UNet", "Reconstruct Masked")], "jet")}
        layout |= {(1 + r, c): (f"{model} {method}", shown[(model, method)], "jet")
                   for r, model in enumerate(("ResNet", "UNet")) for c, method in enumerate(paper.MAP_METHODS)}
        for (r, c), (title, img, cmap) in layout.items():
            ax = axes[3 * b + r][c]
            shown_image = ax.imshow(img, cmap=cmap, **({"vmin": 0, "vmax": vmax} if cmap == "jet" else {}))
            if cmap == "jet":
                saliency = shown_image
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[3 * b][0].set_ylabel(TASKS[task].label, fontsize=11)
        axes[3 * b][3].axis("off")
        colour_bar(fig, saliency, axes[3 * b:3 * b + 3].ravel().tolist(), f"{TASKS[task].label}: top 10 % of |g|")
    fig.suptitle(f"{' and '.join(TASKS[t].label for t in tasks)} saliency, top 10 % of |g| ({kind}, A-13; "
                 f"{ctx.switches['saliency_model']} model, A-14)"
                 + (" - SYNTHETIC fixture volumes" if synthetic(ctx) else ""))
    prov = artefact_provenance(ctx, name, runs, store, saliency=kind, model_weights=ctx.switches["saliency_model"],
                               slices=picks,
                               threshold="90th percentile of each map; one colour scale per task block",
                               msd_data=msd_data(ctx, set(tasks)))
    return [save_figure(fig, output_path(ctx, name, "figure"), prov, arrays)]


def figure4(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Liver and Cardiac saliency maps (see `_msd_maps`)."""
    return _msd_maps(ctx, runs, store, "figure4")


def figure8(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Pancreas saliency maps (see `_msd_maps`)."""
    return _msd_maps(ctx, runs, store, "figure8")
