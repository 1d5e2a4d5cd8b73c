"""cfaug qualitative figures that need no training runs (specs/cfaug.md §1.10).

Figure 2: fixed training images of one dataset through every CF and F generator (§5.3, §5.4) exactly as
`repro.papers.cfaug.generators` computes them on a batch, after the dataset's training transform with fixed draws.
Figure 3: the same IN-9 test foregrounds in Original, Mixed-Same, Mixed-Rand and Mixed-Next (eval transform).
Both show images with the input normalisation undone ((x + 1) / 2) and save the shown arrays beside the PNG.
"""

from __future__ import annotations

from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from repro.data.image_sets import DatasetError
from repro.papers import Context, PlannedRun
from repro.report.artefacts import output_path
from repro.papers.cfaug.report import cfaug_provenance
from repro.report.figures import new_figure, save_figure
from repro.runs.store import RunStore

FIGURE2_DATASETS = ("in9", "waterbirds", "cct")  # the default: the first with a recorded source
N_IMAGES = 3  # figure 2 rows
STREAM = 2021  # TrainSet stream of the figure's crop/flip draws
GEN_SEED = 2021  # the generators' draws: item_generator(GEN_SEED, column)
MODEL_SEED = 0  # the untrained FGSM model's init
CF_COLUMNS = (("grey", "CF Grey"), ("random", "CF Random"), ("shuffle", "CF Shuffle"), ("tile", "CF Tile"),
              ("cagan", "CF CAGAN"))
F_COLUMNS = (("random", "F Random"), ("shuffle", "F Shuffle"), ("mrand", "F Mixed-Rand"), ("fgsm", "F FGSM"))
VARIANTS = (("original", "Original"), ("mixed_same", "Mixed-Same"), ("mixed_rand", "Mixed-Rand"),
            ("mixed_next", "Mixed-Next"))
FIGURE3_CLASSES = (0, 3, 6)  # figure 3 rows: the first Original test image (file order) of each of these classes
WB_CLASSES = ("landbird", "waterbird")
X0_BUG = ("tile_x0_bug on (C-6): {tile}an F Mixed-Rand background holding a donor's whole image is the code's "
          "column-0 bug, shown as the runs see it")


def to_display(x: Tensor) -> np.ndarray:
    """(..., 3, H, W) normalised images -> (..., H, W, 3) float32 in [0, 1] ((x + 1) / 2, clipped)."""
    return ((x.detach().float().cpu() + 1) / 2).clamp(0, 1).movedim(-3, -1).numpy()


def first_source(ctx: Context, datasets: tuple[str, ...] = FIGURE2_DATASETS) -> tuple[str, dict[str, Any]]:
    """The first of `datasets` with a recorded source, and that source; DatasetError when none has one."""
    from repro.papers.cfaug.sources import source_for

    errors = []
    for name in datasets:
        try:
            return name, source_for(ctx, name)
        except DatasetError as e:
            errors.append(f"{name}: {e}")
    raise DatasetError("no cfaug dataset is prepared for the figure; " + "; ".join(errors))


def _size(ctx: Context) -> int:
    from repro.papers.cfaug.plans import profile_setting
    return int(profile_setting(ctx, "size", 224))


def fgsm_eps(ctx: Context, dataset: str) -> float:
    """The F(FGSM) epsilon of the tables' runs: 0.5, Waterbirds the switch C-13."""
    return float(ctx.switches["wb_fgsm_eps"]) if dataset == "waterbirds" else 0.5


def _class_names(dataset: str, data: Any) -> list[str]:
    from repro.data.in9 import CLASSES

    if dataset == "in9":
        return [c.split("_", 1)[1] for c in CLASSES]
    if dataset == "waterbirds":
        return list(WB_CLASSES)
    return [f"category {c}" for c in data.details["categories"]]


def load_with_infills(dataset: str, source: dict[str, Any], size: int, preproc: str, fg_mask: str
                      ) -> tuple[Any, str]:
    """The full dataset of a recorded source at `size`, `preproc` and IN-9 mask rule `fg_mask` (C-26), with CAGAN
    infills where recorded (and a note when they cannot be used)."""
    from repro.papers.cfaug.data import load_cfaug

    load = partial(load_cfaug, dataset, Path(source["root"]), size=size, preproc=preproc, fg_mask=fg_mask)
    if source.get("cagan"):
        try:
            return load(cagan=True), ""
        except DatasetError as e:
            return load(), f"CF CAGAN left out: {e}"
    return load(), "CF CAGAN left out: no infills recorded"


def pick_masked(train: Any, n: int = N_IMAGES) -> tuple[list[int], list[dict[str, Tensor]]]:
    """`n` training images whose transformed sample has a non-empty mask: the first (index order) of each class,
    classes in label order, then (fewer classes than `n`) the next ones in index order; their indices and samples."""
    labels = train.labels
    annotated = np.flatnonzero([bool(it.mask or it.boxes) for it in train.items])
    firsts = [int(annotated[labels[annotated] == c][0]) for c in np.unique(labels[annotated])]
    seen = set(firsts)
    candidates = chain(firsts, (int(i) for i in annotated if i not in seen))
    chosen: list[int] = []
    samples: list[dict[str, Tensor]] = []
    for i in candidates:
        sample = train[i]
        if bool(sample["has_bbox"]):
            chosen.append(i)
            samples.append(sample)
        if len(chosen) == n:
            break
    if not chosen:
        raise DatasetError("no training image with a foreground mask or bbox to show")
    return chosen, samples


def fgsm_model(ctx: Context, dataset: str, source: dict[str, Any], store: RunStore,
               num_classes: int) -> tuple[nn.Module, str, str]:
    """The done Orig run (first seed) of `dataset`'s table config when its best.pt exists, else a freshly
    initialised model of the profile's architecture (seed MODEL_SEED, init random, default head: the CCT
    recipe's zero head would give the attack no gradient); a description; and its init."""
    from repro.models import build_model
    from repro.papers.cfaug.plans import ROWS, model_init, run_config, seeds
    cfg = run_config(ctx, dataset, ROWS[dataset][0], seeds(ctx)[0], source)
    args = {**cfg.model_args, "init": "random", "head_init": "default", "num_classes": num_classes}
    record = store.record(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(MODEL_SEED)
        model = build_model(cfg.model, **args)
    if record.path("done").exists() and record.path("best.pt").exists():
        model.load_state_dict(torch.load(record.path("best.pt"), map_location="cpu", weights_only=True))
        init = model_init(cfg.model, cfg.model_args["init"])
        return model, f"trained Orig run {record.key} (best.pt), {cfg.model}", init
    note = (f"untrained {cfg.model} (random init, torch seed {MODEL_SEED}): no done Orig run {record.key}; the "
            "paper's figure attacks its trained model, so these perturbations differ from its look")
    return model, note, "random"


def generator_panels(batch: dict[str, Tensor], model: nn.Module, ctx: Context, dataset: str,
                     columns: list[tuple[str, str, str]]) -> list[Tensor]:
    """The image of each (kind "cf"/"f", name, title) column for the batch, column k drawing from
    item_generator(GEN_SEED, k)."""
    from repro.papers.cfaug.data import item_generator
    from repro.papers.cfaug.generators import counterfactual, factual

    sw = ctx.switches
    x, mask, y = batch["x"], batch["mask"], batch["y"]
    out = []
    for k, (kind, name, _) in enumerate(columns):
        gen = item_generator(GEN_SEED, k)
        if kind == "cf":
            out.append(counterfactual(name, x, mask, gen, cagan=batch.get("cagan"), shuffle=sw["shuffle"],
                                      tile_x0_bug=sw["tile_x0_bug"], tile_bbox=dataset == "in9",
                                      rectangle=dataset != "cct"))
        else:
            out.append(factual(name, x, mask, y, gen, model=model, eps=fgsm_eps(ctx, dataset), shuffle=sw["shuffle"],
                               tile_x0_bug=sw["tile_x0_bug"]))
    return out


def blank_axis(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_frame_on(False)


def _grid(images: np.ndarray, titles: list[str], rows: list[str], masks: np.ndarray | None = None) -> Any:
    """A figure of images (R, C, H, W, 3) (NaN = empty panel), with the masks (R, H, W) as column 2 if given."""
    r, c = images.shape[:2]
    extra = masks is not None
    fig, axes = new_figure(r, c + extra, (1.6 * (c + extra), 1.75 * r))
    heads = titles[:1] + (["Mask"] if extra else []) + titles[1:]
    for i in range(r):
        panels = [images[i, 0]] + ([masks[i]] if extra else []) + list(images[i, 1:])
        for j, (ax, img) in enumerate(zip(axes[i], panels)):
            blank_axis(ax)
            if i == 0:
                ax.set_title(heads[j], fontsize=8)
            if not np.isnan(img).any():
                ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[i][0].set_ylabel(rows[i], fontsize=7)
    fig.subplots_adjust(wspace=0.05, hspace=0.12)
    return fig


def figure2(ctx: Context, runs: list[PlannedRun], store: RunStore, dataset: str | None = None) -> list[Path]:
    """Figure 2: N_IMAGES fixed training images (rows) as original, mask, CF Grey/Random/Shuffle/Tile[/CAGAN]
    and F Random/Shuffle/Mixed-Rand/FGSM of `dataset` (default: the first of in9, waterbirds, cct prepared)."""
    from repro.papers.cfaug.data import collate
    from repro.papers.cfaug.sources import source_for

    dataset, source = (dataset, source_for(ctx, dataset)) if dataset else first_source(ctx)
    data, cagan_note = load_with_infills(dataset, source, _size(ctx), ctx.switches["preproc"],
                                         ctx.switches["in9_fg_mask"])
    data.train.set_stream(STREAM)
    indices, samples = pick_masked(data.train)
    batch = collate(samples)
    columns = [("cf", n, t) for n, t in CF_COLUMNS if n != "cagan" or "cagan" in batch]
    columns += [("f", n, t) for n, t in F_COLUMNS]
    model, model_note, init = fgsm_model(ctx, dataset, source, store, data.num_classes)
    panels = generator_panels(batch, model, ctx, dataset, columns)
    images = to_display(torch.stack([batch["x"], *panels], 1))
    masks = batch["mask"][:, 0].numpy().astype(np.float32)
    names = _class_names(dataset, data)
    labels = batch["y"].numpy()
    rows = [f"{names[y]}\ntrain #{i}" for i, y in zip(indices, labels)]
    titles = ["Original"] + [t for _, _, t in columns]
    fig = _grid(images, titles, rows, masks)
    fig.suptitle(f"cfaug Figure 2: CF and F generators on {dataset} training images"
                 + (" (synthetic data)" if source["synthetic"] else ""), fontsize=9)
    arrays = {"images": images, "masks": masks, "indices": np.array(indices, dtype=np.int64), "labels": labels,
              "columns": np.array(titles)}
    notes = [n for n in (cagan_note, f"F FGSM against the {model_note}") if n]
    prov = cfaug_provenance(
        ctx, "figure2", runs, store, init=f"{init} (the F FGSM model)", dataset=dataset,
        synthetic_data=source["synthetic"],
        data_fingerprint=source["fingerprint"], indices=indices, labels=labels.tolist(), columns=titles,
        selection=(f"{N_IMAGES} training images whose transformed sample has a non-empty mask: the first (index "
                   "order) of each class, classes in label order, then the next ones in index order"),
        draws=(f"training transform with TrainSet stream {STREAM}; generator column k draws from "
               f"item_generator({GEN_SEED}, k); the generators run on the {len(indices)} images as one batch"),
        fgsm_model=model_note, fgsm_eps=fgsm_eps(ctx, dataset),
        display="(x + 1) / 2 of the normalised images; mask column: the batch's fg mask (CF uses its rectangle)",
        x0_bug=X0_BUG.format(tile="a CF Tile panel equal to the original, or " if dataset == "in9" else "")
        if ctx.switches["tile_x0_bug"] else "off",
        note="; ".join(notes))
    return [save_figure(fig, output_path(ctx, "figure2", "figure"), prov, arrays)]


def matched_indices(evals: dict[str, Any], classes: tuple[int, ...] = FIGURE3_CLASSES) -> np.ndarray:
    """(len(classes), 4) indices into each IN-9 test variant of the first Original image of each class, matched
    by class and original file stem (§3.1: mixed files are fg_<stem>...); -1 where a variant lacks it."""
    from repro.papers.cfaug.listings import foreground_stem

    keys: dict[str, dict[tuple[int, str], int]] = {v: {} for v, _ in VARIANTS}
    for v, found in keys.items():
        for i, it in enumerate(evals[v].items):
            found.setdefault((it.label, foreground_stem(it.image.name)), i)
    original = evals["original"].labels
    out = []
    for c in classes:
        hits = np.flatnonzero(original == c)
        if not len(hits):
            continue
        key = (c, foreground_stem(evals["original"].items[int(hits[0])].image.name))
        out.append([keys[v].get(key, -1) for v, _ in VARIANTS])
    if not out:
        raise DatasetError(f"IN-9 Original test set has no image of classes {classes}")
    return np.array(out, dtype=np.int64)


def figure3(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Figure 3: one foreground per row (the first Original test image of classes FIGURE3_CLASSES) in Original,
    Mixed-Same, Mixed-Rand and Mixed-Next, through the eval transform."""
    from repro.papers.cfaug.data import load_cfaug
    from repro.papers.cfaug.sources import source_for

    source = source_for(ctx, "in9")
    size = _size(ctx)
    data = load_cfaug("in9", Path(source["root"]), size=size, preproc=ctx.switches["preproc"])
    idx = matched_indices(data.evals)
    images = np.full((*idx.shape, size, size, 3), np.nan, dtype=np.float32)
    files = [[""] * len(VARIANTS) for _ in range(len(idx))]
    for r, row in enumerate(idx):
        for c, ((variant, _), i) in enumerate(zip(VARIANTS, row)):
            if i >= 0:
                images[r, c] = to_display(data.evals[variant][int(i)]["x"])
                files[r][c] = data.evals[variant].items[int(i)].image.name
    labels = data.evals["original"].labels[idx[:, 0]]
    names = _class_names("in9", data)
    stems = [Path(f[0]).stem for f in files]
    fig = _grid(images, [t for _, t in VARIANTS], [f"{names[y]}\n{s}" for y, s in zip(labels, stems)])
    fig.suptitle("cfaug Figure 3: IN-9 test variants of one foreground"
                 + (" (synthetic data)" if source["synthetic"] else ""), fontsize=9)
    arrays = {"images": images, "indices": idx, "labels": labels, "files": np.array(files),
              "columns": np.array([v for v, _ in VARIANTS])}
    missing = [f"{names[y]} {v}" for row, y in zip(idx, labels) for (v, _), i in zip(VARIANTS, row) if i < 0]
    prov = cfaug_provenance(
        ctx, "figure3", runs, store, init="none: no model", dataset="in9", synthetic_data=source["synthetic"],
        data_fingerprint=source["fingerprint"], indices=idx.tolist(), files=files, labels=labels.tolist(),
        selection=(f"the first Original test image (file order) of classes {list(FIGURE3_CLASSES)}, matched in the "
                   "other variants by class and original file stem (15 characters after fg_)"),
        display="(x + 1) / 2 of the eval transform's normalised images",
        note=f"missing from a variant (empty panel): {', '.join(missing)}" if missing else "")
    return [save_figure(fig, output_path(ctx, "figure3", "figure"), prov, arrays)]
