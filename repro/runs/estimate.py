"""Time estimates for runs not done yet, from done runs in the store or from reference speeds."""

from __future__ import annotations

from collections import defaultdict
from statistics import median

from repro.runs.store import RunRecord

# Seconds per epoch per 100 training images on a 2-core CPU, read from the metrics.jsonl of
# `repro actdiff table1 --profile quick` (2026-11-24); the multiplier is per penalty. Used only until
# done runs of the same kind exist in the store.
REFERENCE = {"cnn": 0.15, "conv_ae": 0.2, "unet": 0.25, "resnet": 2.1}
PENALTY_COST = {"actdiff": 1.9, "gradmask": 1.9}


def _kind(record: RunRecord) -> tuple[str, tuple[str, ...]]:
    cfg = record.config
    return cfg.model, tuple(sorted(cfg.method_args.get("objective", {})))


def _n_train(record: RunRecord) -> int:
    return int(record.config.data.get("n_train", 100))


def estimate_seconds(todo: list[RunRecord], done: list[RunRecord]) -> float:
    """Seconds to train `todo` sequentially, using the speed of done runs of the same kind when known."""
    measured: dict[tuple, list[float]] = defaultdict(list)
    for r in done:
        res = r.result()  # the contract's keys, also for runs written before it
        measured[_kind(r)].append(res["seconds"] / max(1, res["epochs"]) / _n_train(r))
    total = 0.0
    for r in todo:
        kind = _kind(r)
        if measured.get(kind):
            per_image_epoch = median(measured[kind])
        else:
            cost = 1.0
            for p in kind[1]:
                cost *= PENALTY_COST.get(p, 1.0)
            per_image_epoch = REFERENCE.get(kind[0], 1.0) / 100 * cost
        remaining = r.config.epochs - len(r.metrics())
        total += per_image_epoch * _n_train(r) * max(0, remaining)
    return total
