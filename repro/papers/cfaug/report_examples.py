"""cfaug qualitative figures from trained runs (specs/cfaug.md §1.10).

Figure 1: fixed IN-9 training images (Figure 2's) as original, CF and F images with the probability of their
label under the done Orig run's selected checkpoint, whatever it is.
Figures 6, 8, 9: the first K images (set order) of the shifted test set (IN-9 Mixed-Next, Waterbirds Flip, CCT
Trans) that the combined method's run classifies right and the Orig run wrong, from both runs' stored
selected-epoch predictions; Figures 11, 12 (appendix B): K such images drawn at random (seed PICK_SEED). Each
panel shows the eval-transformed image with both models' top-5 softmax predictions (grey: combined, red: Orig,
as in the paper). The runs are the plans' first seeds; a run that is not done is a ValueError naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from repro.papers import Context, PlannedRun
from repro.papers.cfaug.sources import run_source
from repro.report.artefacts import output_path
from repro.papers.cfaug.report import cfaug_provenance
from repro.papers.cfaug.report_figures import (CF_COLUMNS, F_COLUMNS, N_IMAGES, STREAM, WB_CLASSES, blank_axis,
                                        generator_panels, load_with_infills, pick_masked, to_display)
from repro.report.figures import new_figure, save_figure
from repro.runs.store import RunRecord, RunStore

SHIFTED = {"in9": "mixed_next", "waterbirds": "flip", "cct": "trans_test"}  # the figures' test sets
K = 6  # examples per figure
TOP = 5
PICK_SEED = 2020  # figures 11 and 12: the random draw among the candidates
RANDOM = ("figure11", "figure12")
FIG1_COLUMNS = [("cf", n, t) for n, t in CF_COLUMNS] + [("f", n, t) for n, t in F_COLUMNS if n in ("random", "shuffle")]
COLOURS = {"best": "0.4", "orig": "tab:red"}


def done_runs(name: str, runs: list[PlannedRun], store: RunStore) -> list[tuple[PlannedRun, RunRecord]]:
    """The planned runs of figure `name` in EXAMPLE_ROWS order (Orig first) with their records; ValueError when
    one is not planned or not done (with its selected checkpoint and predictions)."""
    from repro.papers.cfaug.plans import EXAMPLE_ROWS
    dataset, wanted = EXAMPLE_ROWS[name]
    planned = {f"{r.cell['method']}|{r.cell['hparam']}": r for r in runs}
    missing = [w for w in wanted if w not in planned]
    if missing:
        raise ValueError(f"cfaug {name} needs the {dataset} runs {', '.join(missing)} but the plan has only "
                         f"{', '.join(planned) or 'none'} (outside the paper profile, CF(CAGAN) configs need the "
                         "CAGAN infills)")
    out = []
    for w in wanted:
        r = planned[w]
        rec = store.record(r.config)
        lacking = [f for f in ("done", "best.pt", "predictions.pt") if not rec.path(f).exists()]
        if lacking:
            raise ValueError(f"cfaug {name}: run {r.label} ({rec.key}) is not done (no {', '.join(lacking)}); "
                             f"`repro cfaug {name}` trains it")
        out.append((r, rec))
    return out


def class_names(dataset: str, source: dict[str, Any]) -> list[str]:
    """IN-9 folder names without their number, landbird/waterbird, CCT category names from the train JSON (ids
    where it has none)."""
    from repro.data.in9 import CLASSES

    if dataset == "in9":
        return [c.split("_", 1)[1] for c in CLASSES]
    if dataset == "waterbirds":
        return list(WB_CLASSES)
    ids = source["details"]["categories"]
    path = Path(source["root"]) / "cct" / "eccv_18_annotation_files" / "train_annotations.json"
    try:
        named = {int(c["id"]): str(c["name"]) for c in json.loads(path.read_text())["categories"] if "name" in c}
    except (OSError, ValueError, KeyError, TypeError):
        named = {}
    return [named.get(c, f"id {c}") for c in ids]


def predictions(record: RunRecord, split: str) -> tuple[Tensor, Tensor]:
    """(logits (N, C), labels (N,)) of the run's selected epoch on `split`."""
    p = torch.load(record.path("predictions.pt"), map_location="cpu", weights_only=True)
    if split not in p:
        raise ValueError(f"run {record.key} has no predictions on {split} (it has {', '.join(p)})")
    return p[split]["logits"].float(), p[split]["labels"].long()


def right_wrong(best: Tensor, orig: Tensor, labels: Tensor) -> np.ndarray:
    """(N,) bool: the combined model's top-1 is the label and the Orig model's is not."""
    return ((best.argmax(1) == labels) & (orig.argmax(1) != labels)).numpy()


def pick(candidates: np.ndarray, k: int = K, seed: int | None = None) -> np.ndarray:
    """The first `k` True positions of `candidates`, or (`seed`) `k` drawn at random (torch.randperm), in set
    order."""
    hits = np.flatnonzero(candidates)
    if seed is None:
        return hits[:k]
    order = torch.randperm(len(hits), generator=torch.Generator().manual_seed(seed))[:k].numpy()
    return np.sort(hits[order])


def top_k(logits: Tensor, k: int = TOP) -> tuple[np.ndarray, np.ndarray]:
    """(classes, softmax probabilities), each (N, min(k, C)), most probable first."""
    p, c = logits.softmax(1).topk(min(k, logits.shape[1]), dim=1)
    return c.numpy(), p.numpy()


def _eval_set(record: RunRecord, split: str, labels: Tensor) -> Any:
    """The run's evaluation set `split` (its data settings, eval transform), checked against its predictions."""
    from repro.papers.cfaug.data import load_cfaug
    from repro.papers.cfaug.train import LIMIT_SEED

    d = record.config.data
    data = load_cfaug(record.config.dataset, Path(run_source(record)["root"]), size=d["size"],
                      limits=d.get("limits"), seed=LIMIT_SEED, preproc=d["preproc"])
    ds = data.evals[split]
    if not np.array_equal(ds.labels, labels.numpy()):
        raise ValueError(f"the {split} set under the run's data settings no longer matches run {record.key}'s "
                         "predictions (labels differ); retrain it")
    return ds


def _topk_text(classes: np.ndarray, probs: np.ndarray, names: list[str]) -> str:
    return "\n".join(f"{names[c][:16]} {100 * p:.1f}%" for c, p in zip(classes, probs))


def _examples_figure(images: np.ndarray, heads: list[str], texts: dict[str, list[str]], title: str) -> Any:
    """Panels of images (N, H, W, 3), three per row, each with both models' top-5 text below."""
    n = len(images)
    cols, rows = min(max(n, 1), 3), max(1, -(-n // 3))
    fig, axes = new_figure(rows, cols, (2.3 * cols, 3.1 * rows))
    for j, ax in enumerate(axes.flat):
        blank_axis(ax)
        if j >= n:
            if n == 0:
                ax.text(0.5, 0.5, "no such example", ha="center", va="center", fontsize=8)
            continue
        ax.imshow(images[j], interpolation="nearest")
        ax.set_title(heads[j], fontsize=7)
        for x, (model, text) in zip((0.0, 0.52), texts.items()):
            ax.text(x, -0.03, text[j], transform=ax.transAxes, va="top", ha="left", fontsize=5.5,
                    color=COLOURS[model])
    fig.suptitle(title, fontsize=8)
    fig.subplots_adjust(wspace=0.08, hspace=0.75)
    return fig


def examples(name: str, ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Figure 6, 8, 9, 11 or 12 (`name`): K shifted-test images the combined run gets right and Orig wrong, the
    first ones or (11, 12) a seeded random draw, with both runs' top-5 predictions."""
    from repro.papers.cfaug.plans import EXAMPLE_ROWS, EXAMPLE_TITLES
    dataset = EXAMPLE_ROWS[name][0]
    split = SHIFTED[dataset]
    (orig_run, orig), (best_run, best) = done_runs(name, runs, store)
    orig_logits, labels = predictions(orig, split)
    best_logits, best_labels = predictions(best, split)
    if not torch.equal(labels, best_labels):
        raise ValueError(f"runs {orig.key} and {best.key} were evaluated on different {split} sets")
    candidates = right_wrong(best_logits, orig_logits, labels)
    random = name in RANDOM
    idx = pick(candidates, K, PICK_SEED if random else None)
    ds = _eval_set(best, split, labels)
    size = best.config.data["size"]
    images = (to_display(torch.stack([ds[int(i)]["x"] for i in idx])) if len(idx)
              else np.zeros((0, size, size, 3), np.float32))
    source = run_source(best)
    names = class_names(dataset, source)
    tops = {"best": top_k(best_logits[idx]), "orig": top_k(orig_logits[idx])}
    texts = {m: [_topk_text(c, p, names) for c, p in zip(*t)] for m, t in tops.items()}
    shown = labels[idx].numpy()
    heads = [f"#{i} {names[y]}" for i, y in zip(idx, shown)]
    fewer = f"only {len(idx)} of the {K} wanted exist" if len(idx) < K else ""
    title = (f"cfaug {name}: {EXAMPLE_TITLES[name]}" + (" (synthetic data)" if source["synthetic"] else "")
             + f"\ngrey: {best_run.cell['method']}, red: Orig; top-{TOP} softmax" + (f"; {fewer}" if fewer else ""))
    fig = _examples_figure(images, heads, texts, title)
    arrays = {"images": images, "indices": idx.astype(np.int64), "labels": shown,
              "best_top": tops["best"][0], "best_prob": tops["best"][1],
              "orig_top": tops["orig"][0], "orig_prob": tops["orig"][1], "class_names": np.array(names)}
    how = (f"{K} drawn by torch.randperm (torch.Generator seed {PICK_SEED}) among the candidates, shown in set order"
           if random else f"the first {K} candidates in set order")
    prov = cfaug_provenance(
        ctx, name, runs, store, dataset=dataset, split=split, synthetic_data=source["synthetic"],
        data_fingerprint=source["fingerprint"], orig_run=orig.key, best_run=best.key,
        best_method=f"{best_run.cell['method']} {best_run.cell['hparam']}".strip(), seed=best_run.cell["seed"],
        indices=idx.tolist(), labels=shown.tolist(), candidates=int(candidates.sum()), set_size=len(labels),
        selection=(f"candidates: {split} images (the run's eval set, in its order) whose selected-epoch top-1 "
                   f"prediction (predictions.pt) is the label for the {best_run.cell['method']} run and not for the "
                   f"Orig run; shown: {how}"),
        display=f"(x + 1) / 2 of the eval transform; top-{TOP} softmax of the stored logits (grey combined, red Orig)",
        note=fewer)
    return [save_figure(fig, output_path(ctx, name, "figure"), prov, arrays)]


def _figure1_grid(images: np.ndarray, p_label: np.ndarray, titles: list[str], rows: list[str], title: str) -> Any:
    r, c = images.shape[:2]
    fig, axes = new_figure(r, c, (1.6 * c, 1.9 * r))
    for i in range(r):
        for j in range(c):
            ax = axes[i][j]
            blank_axis(ax)
            ax.imshow(images[i, j], interpolation="nearest")
            ax.set_xlabel(f"p(label) = {p_label[i, j]:.3f}", fontsize=6)
            if i == 0:
                ax.set_title(titles[j], fontsize=8)
        axes[i][0].set_ylabel(rows[i], fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.subplots_adjust(wspace=0.05, hspace=0.3)
    return fig


def figure1(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Figure 1: Figure 2's IN-9 training images as original, CF Grey/Random/Shuffle/Tile[/CAGAN] and F Random/
    Shuffle, with the probability of the label under the done Orig run's selected checkpoint."""
    from repro.papers.cfaug.data import collate
    from repro.engine import load_weights
    from repro.papers.cfaug.plans import EXAMPLE_TITLES
    ((_, rec),) = done_runs("figure1", runs, store)
    source = run_source(rec)
    d = rec.config.data
    data, cagan_note = load_with_infills(rec.config.dataset, source, d["size"], d["preproc"],
                                         d.get("fg_mask", "code"))
    data.train.set_stream(STREAM)
    indices, samples = pick_masked(data.train, N_IMAGES)
    batch = collate(samples)
    columns = [c for c in FIG1_COLUMNS if c[:2] != ("cf", "cagan") or "cagan" in batch]
    model = load_weights(rec, "best")
    x = torch.stack([batch["x"], *generator_panels(batch, model, ctx, rec.config.dataset, columns)], 1)
    with torch.no_grad():
        probs = model(x.flatten(0, 1))[0].float().softmax(1).unflatten(0, x.shape[:2])
    y = batch["y"]
    p_label = probs.gather(2, y[:, None, None].expand(*x.shape[:2], 1))[..., 0].numpy()
    images = to_display(x)
    titles = ["Original"] + [t for _, _, t in columns]
    kinds = np.array(["original"] + [k for k, _, _ in columns])
    names = class_names("in9", source)
    rows = [f"{names[c]}\ntrain #{i}" for i, c in zip(indices, y.tolist())]
    title = (f"cfaug figure1: {EXAMPLE_TITLES['figure1']}" + (" (synthetic data)" if source["synthetic"] else "")
             + f"\nOrig run {rec.key} (selected epoch)")
    fig = _figure1_grid(images, p_label, titles, rows, title)
    lower = p_label[:, kinds == "cf"] < p_label[:, :1]
    higher = p_label[:, kinds == "f"] > p_label[:, :1]
    arrays = {"images": images, "p_label": p_label, "probs": probs.numpy(), "indices": np.array(indices, np.int64),
              "labels": y.numpy(), "columns": np.array(titles)}
    prov = cfaug_provenance(
        ctx, "figure1", runs, store, dataset="in9", synthetic_data=source["synthetic"],
        data_fingerprint=source["fingerprint"], orig_run=rec.key, indices=indices, labels=y.tolist(),
        columns=titles, p_label=p_label.round(6).tolist(),
        cf_lowers=f"{int(lower.sum())} of {lower.size} CF panels have a lower p(label) than their original",
        f_raises=f"{int(higher.sum())} of {higher.size} F panels have a higher p(label) than their original",
        selection="Figure 2's images: the first masked training image (index order) of each class, full train set",
        draws=f"training transform with TrainSet stream {STREAM}; the generators' draws as in Figure 2",
        display="(x + 1) / 2 of the normalised images; p(label): softmax of the Orig model's logits in eval mode",
        x0_bug=("tile_x0_bug on (C-6): a CF Tile panel equal to the original is the code's column-0 bug, shown as "
                "the runs see it") if ctx.switches["tile_x0_bug"] else "off",
        note=cagan_note)
    return [save_figure(fig, output_path(ctx, "figure1", "figure"), prov, arrays)]


def figure6(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Figure 6: IN-9 Mixed-Next images CF(CAGAN)+F(Shuffle)+Sal gets right and Orig wrong (the first K)."""
    return examples("figure6", ctx, runs, store)


def figure8(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Figure 8: Waterbirds Flip images CF(CAGAN)+F(Random)+Sal gets right and Orig wrong (the first K)."""
    return examples("figure8", ctx, runs, store)


def figure9(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Figure 9: CCT Trans images CF(Tile)+Sal gets right and Orig wrong (the first K)."""
    return examples("figure9", ctx, runs, store)


def figure11(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Figure 11: K random IN-9 Mixed-Next images CF(CAGAN)+F(Shuffle)+Sal gets right and Orig wrong."""
    return examples("figure11", ctx, runs, store)


def figure12(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Figure 12: K random CCT Trans images CF(Tile)+Sal gets right and Orig wrong."""
    return examples("figure12", ctx, runs, store)
