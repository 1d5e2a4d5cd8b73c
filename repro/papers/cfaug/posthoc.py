"""Post-hoc evaluations of done cfaug runs' selected checkpoints (spec §7.3): the saliency AUPR of Tables 2, 5
and 7, cached in the run folder per settings so a table rebuild costs nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from repro.runs.store import RunRecord, atomic_write_json

SALIENCY_SEED = 2020  # §7.3: the global seed of the authors' evaluation


class LazyImages:
    """An evaluation set's images, decoded on indexing (`images[idx]` with an index tensor), so a whole test set
    never sits in memory for DeepLiftShap."""

    def __init__(self, ds: Any, rows: list[int]):
        self.ds, self.rows = ds, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: Tensor) -> Tensor:
        return torch.stack([self.ds[self.rows[i]]["x"] for i in idx.reshape(-1).tolist()])


def subset_rows(candidates: list[int], images: int | None) -> list[int]:
    """All candidate rows, or a seeded subset of `images` of them, in order."""
    if images is None or images >= len(candidates):
        return candidates
    pick = torch.randperm(len(candidates), generator=torch.Generator().manual_seed(SALIENCY_SEED))[:images]
    return [candidates[i] for i in sorted(pick.tolist())]


def candidate_rows(dataset: str, ds: Any) -> list[int]:
    """The rows saliency is evaluated on, baselines included: CCT's images with a bbox only (§7.3,
    `only_bbox_imgs`); every image elsewhere (those with an all-0 or all-1 mask are skipped when scoring)."""
    if dataset == "cct":
        return [i for i, item in enumerate(ds.items) if item.boxes]
    return list(range(len(ds)))


def saliency_of_run(record: RunRecord, sets: tuple[str, ...], settings: dict[str, Any],
                    device: torch.device) -> dict[str, float]:
    """Saliency AUPR (%) of the run's best checkpoint on each evaluation set; `settings` = {"images": n or None
    (all), "baselines": k, "relu": C-20 mode}. Cached as `saliency-<hash>.json`."""
    from repro.papers.cfaug.data import load_cfaug
    from repro.papers.cfaug.saliency import saliency_aupr
    from repro.papers.cfaug.sources import run_source
    from repro.papers.cfaug.train import LIMIT_SEED
    from repro.engine import load_weights

    tag = hashlib.sha256(json.dumps([sets, settings], sort_keys=True).encode()).hexdigest()[:12]
    cache = record.path(f"saliency-{tag}.json")
    if cache.exists():
        return json.loads(cache.read_text())["aupr"]
    cfg, d = record.config, record.config.data
    source = run_source(record)
    data = load_cfaug(cfg.dataset, Path(source["root"]), size=d["size"], limits=d.get("limits"), seed=LIMIT_SEED,
                      preproc=d["preproc"], eval_masks=True)
    model = load_weights(record, "best", device)
    out, counts = {}, {}
    for name in sets:
        ds = data.evals[name]
        rows = subset_rows(candidate_rows(cfg.dataset, ds), settings["images"])
        labels, masks = [], []
        for i in rows:  # one image at a time: only the labels and boolean masks are kept
            item = ds[i]
            labels.append(int(item["y"]))
            masks.append(item["mask"] > 0)
        out[name] = float("nan") if len(rows) < 2 else saliency_aupr(  # DeepLiftShap draws baselines from >= 2
            model, LazyImages(ds, rows), torch.tensor(labels), torch.stack(masks), baselines=settings["baselines"],
            seed=SALIENCY_SEED, relu=settings["relu"])
        counts[name] = len(rows)
    atomic_write_json(cache, {"sets": list(sets), "settings": settings, "aupr": out, "images": counts})
    return out
