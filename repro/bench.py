"""`repro bench`: one-by-one versus packed training throughput for each paper's training step, measured side
by side in one invocation on the present device, with each artefact grid's projected time.

A case is one pack of an artefact grid as the launcher forms it (architecture, batch, input size, optimiser, and
one objective per member run: seeds, methods and lambdas together where `repro.runs.launch.pack_groups` packs
them). One-by-one = each member's step alone, with its own model, optimiser and objective (the engine's path
for one run); packed = one `repro.packed.Pack` step for all members.
Inputs, labels and masks are random tensors already on the device (a step's cost does not depend on their
values). Throughput is model-steps/s (timed steps x members / wall time between two synchronisations).
`pipeline_grid_hours` is what `repro` itself would take for the grid: packed where its launcher packs these
runs, one by one where it does not (runs with stages, penalties that cannot be packed).
Each one-by-one step time is also written to `benchmarks/<device>.speeds.csv` (`repro.runs.speeds`), where the
`--dry-run` time estimate reads it.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path
from typing import Any

import torch

from repro.engine import Step, make_optimizer
from repro.methods import build_objective, build_pack_objective
from repro.models import build_model
from repro.runs.speeds import FOLDER, SUFFIX, Speed, objective_name, write_speeds
from repro.seeding import seed_everything


@dataclass(frozen=True)
class Case:
    """One pack of an artefact grid as the launcher forms it: one member per run, each with its objective spec
    (seeds, lambdas and pure penalties may differ), `steps_per_run` training steps each."""

    grid: str
    label: str
    model: str
    objectives: tuple[dict[str, Any], ...]
    batch: int
    shape: tuple[int, ...]
    steps_per_run: int
    lr: float
    optimizer: dict[str, Any]
    model_args: dict[str, Any] = field(default_factory=dict)
    packed_in_pipeline: bool = True

    @property
    def members(self) -> int:
        return len(self.objectives)


def train_steps(n: int, batch: int, epochs: int) -> int:
    """Optimiser steps of a run: ceil(n / batch) batches per epoch (the last one partial) x epochs."""
    return -(-n // batch) * epochs


def cases(members: dict[str, int]) -> list[Case]:
    """The benchmarked packs, from each paper's `bench_cases` (its settings); `members` = seeds per grid."""
    from repro.papers import PAPER_NAMES, get_paper, load_all

    load_all()  # the penalties the cases' objectives name
    return [case for name in PAPER_NAMES if (fn := get_paper(name).bench_cases)
            for case in fn(members[name])]


class GpuSampler:
    """Mean GPU utilisation (%) from `nvidia-smi` polled in a thread while timing; NaN where unreadable."""

    def __init__(self, device: torch.device):
        self.on = device.type == "cuda" and shutil.which("nvidia-smi") is not None
        self.index = device.index or 0
        self.samples: list[float] = []
        self._stop = threading.Event()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "-i", str(self.index), "--query-gpu=utilization.gpu",
                                      "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5)
                self.samples.append(float(out.stdout.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return
            self._stop.wait(0.2)

    def __enter__(self) -> GpuSampler:
        if self.on:
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else float("nan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step, warmup: int, timed: int, device: torch.device) -> tuple[float, float, float]:
    """(seconds for `timed` steps after `warmup`, peak allocated MiB, mean GPU utilisation %)."""
    for _ in range(warmup):
        step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with GpuSampler(device) as gpu:
        t0 = time.perf_counter()
        for _ in range(timed):
            step()
        _sync(device)
        seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return seconds, peak, gpu.mean


def measure(case: Case, warmup: int, timed: int, device: torch.device) -> dict[str, Any]:
    """One pack, one-by-one then packed, on the same device in the same process. One-by-one times one model
    per distinct objective in the pack and sums them over its members (each member's step as it runs alone)."""
    from repro.packed import Pack, packable

    seed_everything(0)
    models = [build_model(case.model, **case.model_args).to(device) for _ in range(case.members)]
    m, b = case.members, case.batch
    x = torch.rand(m * b, *case.shape, device=device)
    y = torch.randint(0, 2, (m * b,), device=device)
    mask = torch.zeros(m * b, 1, *case.shape[1:], device=device)
    mask[..., :8, :8] = 1  # a corner box: the ROI / penalised region
    gens = [torch.Generator(device=device).manual_seed(i) for i in range(m)]
    keys = [json.dumps(o, sort_keys=True) for o in case.objectives]
    counts, kinds = Counter(keys), dict(zip(keys, case.objectives))
    row: dict[str, Any] = {"grid": case.grid, "label": case.label, "model": case.model, "members": m,
                           "grid_runs": m, "batch": b, "shape": "x".join(map(str, case.shape)),
                           "steps_per_run": case.steps_per_run, "lr": case.lr,
                           "packed_in_pipeline": case.packed_in_pipeline}
    one = {}
    for key, spec in kinds.items():  # one member of each kind, alone: its model, optimiser and objective
        net = copy.deepcopy(models[0])
        alone = Step(net, build_objective(spec), make_optimizer(net, case.optimizer, case.lr))

        def step(alone=alone) -> None:  # a fresh input per step (a penalty may edit it in place)
            alone(x[:b].clone(), y[:b], mask[:b], gens[0])

        one[key] = time_steps(step, warmup, timed, device)
    row["speeds"] = [Speed(device_slug(device), case.model, objective_name(kinds[k]), b, case.shape[-1], one[k][0] / timed,
                           time.strftime("%Y-%m-%d"), "") for k in kinds]  # `run_bench` adds the profile
    seconds = sum(counts[k] * one[k][0] for k in kinds)  # `timed` steps of every member, one by one
    results = {"one_by_one": (seconds, max(v[1] for v in one.values()),
                              sum(counts[k] * one[k][2] for k in kinds) / m)}
    pack_objective = build_pack_objective(list(case.objectives))
    row["not_packed"] = packable(models[0], pack_objective) or ""
    if not row["not_packed"]:
        pack = Pack(models)
        packed = Step(pack, pack_objective, make_optimizer(pack, case.optimizer, case.lr))
        results["packed"] = time_steps(lambda: packed(x.clone(), y, mask, gens), warmup, timed, device)
    for mode, timing in results.items():
        row |= rates(mode, timing, timed, m, b, case.steps_per_run, m)
    return finish_row(row, case.packed_in_pipeline)


def rates(mode: str, timing: tuple[float, float, float], timed: int, members: int, batch: int, steps_per_run: int,
          grid_runs: int) -> dict[str, float]:
    """A mode's throughput columns from `time_steps`'s (seconds, peak MiB, GPU %) for `timed` steps of `members`
    models, and the hours of `grid_runs` runs of `steps_per_run` steps at that rate."""
    secs, peak, util = timing
    rate = timed * members / secs
    return {f"{mode}_model_steps_per_s": rate, f"{mode}_iterations_per_s": timed / secs,
            f"{mode}_images_per_s": rate * batch, f"{mode}_runs_per_hour": rate * 3600 / steps_per_run,
            f"{mode}_peak_mib": peak, f"{mode}_gpu_util_pct": util,
            f"{mode}_grid_hours": grid_runs * steps_per_run / rate / 3600}


def finish_row(row: dict[str, Any], packed_in_pipeline: bool) -> dict[str, Any]:
    """NaN packed columns where the runs cannot be packed (`row["not_packed"]` says why), the speed-up, and the
    hours the pipeline itself takes (packed where its launcher packs, else one by one)."""
    if row["not_packed"]:  # the grid trains these runs one by one
        row |= {k.replace("one_by_one", "packed"): float("nan") for k in list(row) if k.startswith("one_by_one_")}
        row["packed_grid_hours"] = row["one_by_one_grid_hours"]
    row["speedup"] = row.get("packed_model_steps_per_s", float("nan")) / row["one_by_one_model_steps_per_s"]
    packs_here = packed_in_pipeline and not row["not_packed"]
    row["pipeline_grid_hours"] = row["packed_grid_hours" if packs_here else "one_by_one_grid_hours"]
    return row


PROFILES = {  # warm-up steps, timed steps, seeds per grid (None: each paper's own, `Paper.default_seeds`)
    "paper": {"warmup": 20, "timed": 100, "seeds": None},
    "quick": {"warmup": 3, "timed": 10, "seeds": None},
    "smoke": {"warmup": 0, "timed": 1, "seeds": 2},
}


def device_slug(device: torch.device) -> str:
    """The benchmarks/ file name of a device, e.g. `nvidia-h100-80gb-hbm3` or `cpu` (`repro.provenance.device_kind`)."""
    from repro.provenance import device_kind, device_name

    return device_kind(device_name(device))


def run_bench(profile: str, device: torch.device, out: Path, only: str | None = None) -> Path:
    """Measure every case (or those whose grid contains `only`) and write `<out>/benchmarks/<device>.csv`
    with a provenance sidecar; returns the CSV's path."""
    import pandas as pd

    from repro.errors import UserError
    from repro.provenance import device_name, provenance
    from repro.report.tables import write_table

    from repro.papers import PAPER_NAMES, get_paper

    p = PROFILES[profile]
    rows = []
    measured = ((case.grid, case.label, case.members, lambda case=case: measure(case, p["warmup"], p["timed"], device))
                for case in cases({name: p["seeds"] or get_paper(name).default_seeds for name in PAPER_NAMES}))
    own = (row for name in PAPER_NAMES if (fn := get_paper(name).bench_rows) for row in fn(profile, device))
    seen = []
    for grid, label, members, run in chain(measured, own):
        seen.append(grid)
        if only and only not in grid:
            continue
        rows.append(run())
        r = rows[-1]
        packed = f"{r['packed_model_steps_per_s']:9.1f} ({r['speedup']:.1f}x)" if not r["not_packed"] else \
            f"not packed: {r['not_packed']}"
        print(f"{grid:17s} {label:28s} x{members}: one-by-one "
              f"{r['one_by_one_model_steps_per_s']:9.1f} model-steps/s, packed {packed}", flush=True)
    if not rows:
        raise UserError(f"--only {only!r} matches no benchmark grid; the grids are {', '.join(dict.fromkeys(seen))}")
    speeds = [replace(s, source=profile) for r in rows for s in r.pop("speeds", [])]
    if speeds:
        write_speeds(out / FOLDER / f"{device_slug(device)}{SUFFIX}", speeds)
    table = pd.DataFrame(rows)
    grids = table.groupby("grid", sort=False)[["one_by_one_grid_hours", "pipeline_grid_hours"]].sum()
    prov = provenance(profile=profile, device=device_name(device), warmup=p["warmup"], timed=p["timed"],
                      grid_hours=grids.reset_index().to_dict(orient="records"),
                      method="model-steps/s = timed steps x members / wall seconds between two synchronisations")
    return write_table(table, out / FOLDER / f"{device_slug(device)}.csv", prov)
