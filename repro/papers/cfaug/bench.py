"""cfaug in `repro bench`: the training step of Tables 1, 4 and 6 (the engine's `repro.engine.Step` with the "cfaug"
objective, `step_loss`, AMP where the run uses it, clipping), timed per kind of step, one by one only, and each
table's projected grid.

Not packed: cfaug runs train through their own job (per-image decoding and bbox-aware crops by loader workers,
batches that grow by each batch's masked images) on a BiT-R50x1 at 224 px, which fills the GPU alone. The kinds
differ in cost: CF and F images enlarge the forward batch, F(FGSM) adds a forward and backward, Sal a double
backward in fp32. Every benchmark image has a mask (the worst case); data loading and the per-epoch evaluation of
every test set are not included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import torch

from repro.config import Profiles

NOT_PACKED = "cfaug's own job: file-decoded batches that grow with CF/F images; BiT-R50x1 fills a GPU alone"
# The paper's training-set sizes (§3.1-3.3; CCT's effective size after removing empties is smaller).
TRAIN_SIZES = {"in9": 45_405, "waterbirds": 4_795, "cct": 13_553}
TABLES = {"in9": "cfaug table1", "waterbirds": "cfaug table4", "cct": "cfaug table6"}
# Warm-up and timed steps: BiT steps are long.
TIMING = Profiles({"warmup": 5, "timed": 20}, quick={"warmup": 2, "timed": 5}, smoke={"warmup": 0, "timed": 1})


def kind(row: Any) -> str:
    """A config's kind of training step: what its cost depends on."""
    parts = (["CF"] if row.cf else []) + (["F(FGSM)" if row.f == "fgsm" else "F"] if row.f else []) + \
        (["Sal"] if row.sal else [])
    return "+".join(parts) or "plain (Orig, Mixup, LS)"


def _method(row: Any, dataset: str) -> Any:
    """The kind's step as benchmarked (CF Grey and F Random stand for every non-FGSM infill: same batch sizes)."""
    from repro.papers.cfaug.losses import CfaugMethod

    return CfaugMethod(cf="grey" if row.cf else None, f=("fgsm" if row.f == "fgsm" else "random") if row.f else None,
                       sal=row.sal, tile_bbox=dataset == "in9")


def _measure(dataset: str, label: str, row: Any, runs: int, profile: str, device: torch.device) -> dict[str, Any]:
    from repro.bench import finish_row, rates, time_steps, train_steps
    from repro.engine import Step, make_optimizer
    from repro.models import build_model
    from repro.papers.cfaug.losses import CfaugObjective
    from repro.papers.cfaug.plans import PROFILES, RECIPES
    from repro.seeding import seed_everything

    r, p = RECIPES[dataset], PROFILES.settings(profile)
    size, batch, model_name = p.get("size", 224), p.get("batch_size", r["batch_size"]), p.get("model", "bit_r50x1")
    epochs = p.get("epochs", r["epochs"])
    seed_everything(0)
    model = build_model(model_name, num_classes=r["classes"], init="random", head_init="default").to(device)
    opt = make_optimizer(model, r["optimizer"], r["lr"])
    amp = device.type == "cuda" and not row.sal  # C-10 auto
    step = Step(model, CfaugObjective(_method(row, dataset)), opt, amp=amp, clip=1.0)
    mask = torch.zeros(batch, 1, size, size, device=device)
    mask[..., size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
    data = {"x": torch.rand(batch, 3, size, size, device=device) * 2 - 1,
            "y": torch.randint(0, r["classes"], (batch,), device=device), "mask": mask,
            "has_bbox": torch.ones(batch, dtype=torch.bool, device=device)}
    gen = torch.Generator(device=device).manual_seed(0)
    warmup, timed = TIMING.get(profile, "warmup"), TIMING.get(profile, "timed")
    timing = time_steps(lambda: step(data, gen), warmup, timed, device)
    steps = train_steps(min(TRAIN_SIZES[dataset], p.get("limits", {}).get(dataset, {}).get("train", 10**9)), batch,
                        epochs)
    row_out = {"grid": TABLES[dataset], "label": label, "model": model_name, "members": 1, "grid_runs": runs,
               "batch": batch, "shape": f"3x{size}x{size}", "steps_per_run": steps, "lr": r["lr"],
               "packed_in_pipeline": False, "not_packed": NOT_PACKED, "amp": amp}
    return finish_row(row_out | rates("one_by_one", timing, timed, 1, batch, steps, runs), False)


def cfaug_rows(profile: str, device: torch.device
               ) -> Iterator[tuple[str, str, int, Callable[[], dict[str, Any]]]]:
    """(grid, label, members, measure) per kind of step of each table; a row's grid hours cover every run of
    that kind in the table (configs x the paper's seeds), so a grid's rows sum to the table's projection."""
    from repro.papers.cfaug.plans import ROWS, SEEDS
    for dataset, grid in TABLES.items():
        rows = ROWS[dataset][:-1]  # the accuracy table's configs (the last row belongs to the saliency table)
        counts = Counter(kind(r) for r in rows)
        examples = {kind(r): r for r in reversed(rows)}
        for label, n in counts.items():
            yield grid, label, 1, (lambda d=dataset, lab=label, row=examples[label], n=n:
                                   _measure(d, lab, row, n * len(SEEDS), profile, device))
