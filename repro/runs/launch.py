"""Local launcher: train the missing runs of a plan, in this process or in a pool of worker processes.

Every run is claimed (an OS file lock) before training, so two `repro` processes on one runs dir never
train the same run; a process waits for runs another one holds and picks up any that it abandons.
"""

from __future__ import annotations

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


def train_claimed(runs_dir: str, config: dict[str, Any], device: str, opts: LaunchOptions,
                  events: Events | None = None) -> str:
    """Claim and train one run; returns its final state (or `running` if another process holds it)."""
    import torch

    from repro.config import RunConfig
    from repro.engine import train_run
    from repro.seeding import resolve_device

    record = RunStore(Path(runs_dir)).record(RunConfig.from_dict(config))
    with Claim(record) as claim:
        if not claim.acquire():
            return RUNNING
        if record.state() == DONE:  # finished by another process between planning and claiming
            return DONE
        if opts.workers > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // opts.workers))
        train_run(record, resolve_device(device), events, opts.checkpoint_seconds, opts.profile)
    return record.state()  # after the claim is released


def _pool_train(args: tuple) -> str:
    runs_dir, config, device, opts, queue = args
    return train_claimed(runs_dir, config, device, opts, queue.put)


def execute(store: RunStore, records: list[RunRecord], opts: LaunchOptions, events: Events) -> None:
    """Train every record that is not done, until all are done or permanently failed.

    Runs held by another process are waited for; if that process dies they are resumed here.
    """
    while pending := todo(records):
        mine = [r for r in pending if r.state() != RUNNING]
        if not mine:
            time.sleep(POLL_SECONDS)
            continue
        if opts.workers <= 1:
            for r in mine:
                train_claimed(str(store.root), r.config.to_dict(), opts.device, opts, events)
        else:
            _execute_pool(store, mine, opts, events)
        if all(r.state() == RUNNING for r in todo(records)):
            time.sleep(POLL_SECONDS)


def _execute_pool(store: RunStore, records: list[RunRecord], opts: LaunchOptions, events: Events) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    devices = _worker_devices(opts.device, opts.workers)
    with ctx.Manager() as manager, ProcessPoolExecutor(opts.workers, mp_context=ctx) as pool:
        queue = manager.Queue()
        futures: set[Future] = {
            pool.submit(_pool_train, (str(store.root), r.config.to_dict(), devices[i % len(devices)], opts, queue))
            for i, r in enumerate(records)
        }
        while futures:
            done, futures = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
            while not queue.empty():
                events(queue.get())
            for f in done:
                f.result()  # re-raise a worker's error after its run was marked failed
        while not queue.empty():
            events(queue.get())
