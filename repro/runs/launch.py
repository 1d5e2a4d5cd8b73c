"""Local launcher: train the missing runs of a plan, in this process or in a pool of worker processes.

Every run is claimed (an OS file lock) before training, so two `repro` processes on one runs dir never
train the same run; a process waits for runs another one holds and picks up any that it abandons.

Runs of one architecture and recipe that resume from the same epoch (seeds, lambdas and pure penalties may
differ: `pack_groups`) train as one pack (`repro.packed`) of at most `pack` members; `pack=0` means 64 on CUDA
and 1 (one by one) on the CPU.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from repro.config import RunConfig
from repro.runs import record as contract
from repro.runs.prepared import runs_dir_of
from repro.runs.store import DAMAGED, DONE, FAILED, RUNNING, Claim, RunRecord, RunStore

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
    path = record.path(contract.CHECKPOINT_INFO)
    if not (path.exists() and record.path(contract.CHECKPOINT).exists()):
        return 0
    try:
        return int(json.loads(path.read_text())["epoch"]) + 1
    except (ValueError, TypeError, KeyError):  # a damaged note: the pack finds the checkpoint's own epoch
        return 0


def packs(records: list[RunRecord], size: int) -> list[list[RunRecord]]:
    """Records grouped into packs of at most `size` (`pack_groups`), each at one resume epoch."""
    return pack_groups(records, size, lambda r: r.config, start_epoch)


T = TypeVar("T")


def pack_groups(items: list[T], size: int, config: Callable[[T], RunConfig],
                start: Callable[[T], int] = lambda item: 0) -> list[list[T]]:
    """`items` grouped into packs of at most `size`: runs of one recipe (model, optimiser, schedule, data but
    the dataset's value-only options, the penalties that are not `pure`) at the same `start` epoch, whatever
    their seeds, lambdas and pure penalties, as long as a penalty they share has the same arguments;
    two-stage (MaskTune) runs and those with an unpackable penalty (RBR's code-order influence) alone."""
    from repro.data.registry import MEMBER_OPTIONS
    from repro.methods import pack_terms, penalty_args
    from repro.papers import load_all

    load_all()  # the penalties `pack_terms` looks up
    groups: dict[tuple, list[list[T]]] = {}
    for item in items:
        cfg = config(item).to_dict()
        spec = cfg["method_args"].pop("objective", {})
        terms = None if cfg["method_args"].get("trainer") else pack_terms(spec)
        for k in ("seed", "method"):
            cfg.pop(k)
        cfg["data"] = {k: v for k, v in cfg["data"].items() if k not in MEMBER_OPTIONS.get(cfg["dataset"], ())}
        alone = size <= 1 or terms is None
        key = (config(item).key,) if alone else (json_key(cfg), json_key(terms), start(item))
        subs = groups.setdefault(key, [])
        mine = {name: penalty_args(args) for name, args in spec.items()}
        sub = next((g for g in subs if _compatible([config(i) for i in g], mine)), None)
        if sub is None:
            subs.append(sub := [])
        sub.append(item)
    return [g[i:i + size] for subs in groups.values() for g in subs for i in range(0, len(g), max(size, 1))]


def _compatible(pack: list[RunConfig], mine: dict[str, dict[str, Any]]) -> bool:
    """Whether each penalty of `mine` (name: arguments but the weight) has the same arguments in every run of
    `pack` that has it."""
    from repro.methods import penalty_args

    for cfg in pack:
        theirs = cfg.method_args.get("objective", {})
        if any(name in theirs and penalty_args(theirs[name]) != args for name, args in mine.items()):
            return False
    return True


def json_key(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True)


def train_claimed(runs_dir: str, configs: list[dict[str, Any]], device: str, opts: LaunchOptions,
                  events: Events | None = None) -> list[str]:
    """Claim the runs of one pack and train those this process could claim (and that are not done yet);
    returns every run's state afterwards (`running` where another process holds it)."""
    import torch

    from repro.engine import train_pack, train_run
    from repro.seeding import resolve_device

    records = [RunStore(Path(runs_dir)).record(RunConfig.from_dict(c)) for c in configs]
    claims = [Claim(r) for r in records]
    try:
        mine = [r for r, c in zip(records, claims) if c.acquire() and r.state() != DONE]
        for r in mine:
            r.clear_temp_files()
            if r.state() == DAMAGED:
                message = r.set_aside_damaged()
                if events:
                    events({"event": "warning", "key": r.key, "message": message})
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


def ensure_done(record: RunRecord, stage: Callable[[RunRecord], Any]) -> RunRecord:
    """`record` (an earlier stage of a pipeline: MaskTune's ERM run, the cross study's finetuned plain run), trained
    here first by `stage` unless it is done; another process training it is waited for."""
    while record.state() != DONE:
        with Claim(record) as claim:
            if claim.acquire():
                if record.state() != DONE:
                    RunStore(runs_dir_of(record)).init(record)
                    stage(record)
                continue
        time.sleep(POLL_SECONDS)
    return record


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
