"""Local launcher: train the missing runs of a plan, in this process or in a pool of worker processes.

Every run is claimed (an OS file lock) before training, so two `repro` processes on one runs dir never
train the same run; a process waits for runs another one holds and picks up any that it abandons.

Runs that differ only in their seed and resume from the same epoch train as one pack (`repro.packed`) of at
most `pack` members; `pack=0` means 64 on CUDA and 1 (one by one) on the CPU.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from repro.runs.store import DONE, FAILED, RUNNING, Claim, RunRecord, RunStore

Events = Callable[[dict[str, Any]], None]
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class LaunchOptions:
    device: str = "auto"
    workers: int = 1
    checkpoint_seconds: float = 60.0
    profile: str = "paper"
    pack: int = 0

    def pack_size(self) -> int:
        import torch

        if self.pack:
            return self.pack
        return AUTO_PACK_CUDA if self.device != "cpu" and torch.cuda.is_available() else 1


AUTO_PACK_CUDA = 64


def permanently_failed(record: RunRecord) -> bool:
    """A run that failed on a non-finite loss fails the same way again: it is not retried."""
    return record.state() == FAILED and "NonFiniteLoss" in record.failure()


def todo(records: list[RunRecord]) -> list[RunRecord]:
    return [r for r in records if r.state() != DONE and not permanently_failed(r)]


def _worker_devices(device: str, workers: int) -> list[str]:
    """One device per worker: `auto` with CUDA spreads workers over all visible GPUs."""
    import torch

    if device == "auto" and torch.cuda.is_available():
        return [f"cuda:{i % torch.cuda.device_count()}" for i in range(workers)]
    return [device] * workers


def start_epoch(record: RunRecord) -> int:
    """The epoch a run resumes at (0 without a checkpoint)."""
    path = record.path("checkpoint.json")
    return json.loads(path.read_text())["epoch"] + 1 if path.exists() and record.path("checkpoint.pt").exists() else 0


def packs(records: list[RunRecord], size: int) -> list[list[RunRecord]]:
    """Records grouped into packs of at most `size`: same config but the seed, same resume epoch; two-stage
    (MaskTune) runs alone."""
    groups: dict[tuple, list[RunRecord]] = {}
    for r in records:
        cfg = r.config.to_dict()
        cfg.pop("seed")
        alone = size <= 1 or r.config.method_args.get("trainer") is not None
        key = (r.key,) if alone else (json_key(cfg), start_epoch(r))
        groups.setdefault(key, []).append(r)
    return [g[i:i + size] for g in groups.values() for i in range(0, len(g), max(size, 1))]


def json_key(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True)


def train_claimed(runs_dir: str, configs: list[dict[str, Any]], device: str, opts: LaunchOptions,
                  events: Events | None = None) -> list[str]:
    """Claim the runs of one pack and train those this process could claim (and that are not done yet);
    returns every run's state afterwards (`running` where another process holds it)."""
    import torch

    from repro.config import RunConfig
    from repro.engine import train_pack, train_run
    from repro.seeding import resolve_device

    records = [RunStore(Path(runs_dir)).record(RunConfig.from_dict(c)) for c in configs]
    claims = [Claim(r) for r in records]
    try:
        mine = [r for r, c in zip(records, claims) if c.acquire() and r.state() != DONE]
        if mine:
            if opts.workers > 1:
                torch.set_num_threads(max(1, (os.cpu_count() or 1) // opts.workers))
            dev = resolve_device(device)
            if len(mine) == 1:
                train_run(mine[0], dev, events, opts.checkpoint_seconds, opts.profile)
            else:
                train_pack(mine, dev, events, opts.checkpoint_seconds, opts.profile)
    finally:
        for c in claims:
            c.release()
    return [r.state() for r in records]  # after the claims are released


def _pool_train(args: tuple) -> list[str]:
    runs_dir, configs, device, opts, queue = args
    return train_claimed(runs_dir, configs, device, opts, queue.put)


def execute(store: RunStore, records: list[RunRecord], opts: LaunchOptions, events: Events) -> None:
    """Train every record that is not done, until all are done or permanently failed.

    Runs held by another process are waited for; if that process dies they are resumed here.
    """
    while pending := todo(records):
        mine = [r for r in pending if r.state() != RUNNING]
        if not mine:
            time.sleep(POLL_SECONDS)
            continue
        units = packs(mine, opts.pack_size())
        if opts.workers <= 1:
            for unit in units:
                train_claimed(str(store.root), [r.config.to_dict() for r in unit], opts.device, opts, events)
        else:
            _execute_pool(store, units, opts, events)
        if all(r.state() == RUNNING for r in todo(records)):
            time.sleep(POLL_SECONDS)


def _execute_pool(store: RunStore, units: list[list[RunRecord]], opts: LaunchOptions, events: Events) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    devices = _worker_devices(opts.device, opts.workers)
    with ctx.Manager() as manager, ProcessPoolExecutor(opts.workers, mp_context=ctx) as pool:
        queue = manager.Queue()
        futures: set[Future] = {
            pool.submit(_pool_train, (str(store.root), [r.config.to_dict() for r in unit], devices[i % len(devices)],
                                      opts, queue))
            for i, unit in enumerate(units)
        }
        while futures:
            done, futures = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
            while not queue.empty():
                events(queue.get())
            for f in done:
                f.result()  # re-raise a worker's error after its run was marked failed
        while not queue.empty():
            events(queue.get())
