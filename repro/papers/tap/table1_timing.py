"""Timing of one real training step (TAP spec §1.1 "Recommended measurement", §4.4 per-step order).

A step is exactly the engine's (`repro.engine.Step`: objective, backward, SGD step) on a batch of uint8
grey images with a tag-box mask, normalised and replicated to 3 channels on the device as the x-ray loader
does. Pixels and labels are synthetic (random): a step's cost does not depend on their values.

Two batch sources: `device` (the batches already on the device, as the engine trains) and `loader` (a torch
DataLoader over CPU tensors, num_workers 4 and pinned memory on CUDA as the authors' code, copied every step).
Per-step times come from CUDA events (no host sync inside the timed region) or `perf_counter` on CPU; `it_s`
is 1 / median step time, `it_s_mean` = timed steps / wall time between two synchronisations.
"""

from __future__ import annotations

import copy
import gc
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from repro.papers.tap.data_tagged_xray import STATS, normalise
from repro.engine import Step
from repro.methods import build_objective
from repro.models import build_model
from repro.seeding import seed_everything

MODES = ("device", "loader")
GIB = 2**30  # memory unit: GiB, as nvidia-smi's MiB / 1024
OOM_GIB = 10.0  # the paper's RTX 3080 has 10 GB (spec §1.1: flag "OOM@10GB" above 10 GiB reserved)
TAG = (22, 44)  # tag box rows x columns at 224 px (spec §2.2 ground-truth mask)
LOADER_WORKERS = 4  # the authors' train loader (spec §6 "Data loading"); 0 on CPU


@dataclass(frozen=True)
class Settings:
    """One benchmark cell's settings; `lr`/`momentum` are the ImageNet models' SGD (spec §6)."""

    batch_size: int
    image_size: int
    warmup: int
    timed: int
    mode: str = "device"
    lr: float = 1e-5
    momentum: float = 0.9
    init: str = "random"
    num_classes: int = 2
    deterministic: bool = True  # repro's engine (seed_everything); False = PyTorch defaults (authors' code)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"benchmark mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.timed < 1 or self.warmup < 0:
            raise ValueError(f"benchmark needs timed >= 1 and warmup >= 0 (got {self.timed}, {self.warmup})")


@dataclass(frozen=True)
class StepTiming:
    """Speed and peak memory of the timed steps; memory is NaN on CPU, speed NaN after an OOM."""

    it_s: float
    it_s_mean: float
    mem_reserved_gb: float
    mem_allocated_gb: float
    oom_10gb: bool
    oom: bool
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tag_masks(n: int, size: int, gen: torch.Generator) -> Tensor:
    """(n, 1, size, size) bool: a 22x44 box (scaled to `size`) in a random corner of each image."""
    h, w = (max(1, round(t * size / 224)) for t in TAG)
    rows = torch.randint(0, 2, (n,), generator=gen) * (size - h)
    cols = torch.randint(0, 2, (n,), generator=gen) * (size - w)
    r, c = torch.arange(size), torch.arange(size)
    in_rows = (r >= rows[:, None]) & (r < rows[:, None] + h)
    in_cols = (c >= cols[:, None]) & (c < cols[:, None] + w)
    return (in_rows[:, :, None] & in_cols[:, None, :]).unsqueeze(1)


def synthetic_batches(n_batches: int, s: Settings) -> tuple[Tensor, Tensor, Tensor]:
    """CPU tensors for `n_batches` batches: uint8 grey images, labels and tag masks (seeded)."""
    gen = torch.Generator().manual_seed(s.seed)
    n = n_batches * s.batch_size
    x = torch.randint(0, 256, (n, 1, s.image_size, s.image_size), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, s.num_classes, (n,), generator=gen)
    return x, y, tag_masks(n, s.image_size, gen)


def to_model_input(x: Tensor) -> Tensor:
    """uint8 grey (B, 1, H, W) -> float (B, 3, H, W) on x's device, as the PNEU loader's transform."""
    return normalise(x, *STATS["pneu"])


def batch_source(x: Tensor, y: Tensor, mask: Tensor, s: Settings, device: torch.device) -> Iterator[tuple[Tensor, ...]]:
    """Endless (x, y, mask) batches on `device`, cycling through the given tensors."""
    if s.mode == "device":
        tensors = [t.to(device) for t in (x, y, mask)]
        starts = range(0, len(y), s.batch_size)
        while True:
            for i in starts:
                yield tuple(t[i:i + s.batch_size] for t in tensors)
    cuda = device.type == "cuda"
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y, mask), batch_size=s.batch_size,
                                         num_workers=LOADER_WORKERS if cuda else 0, pin_memory=cuda,
                                         persistent_workers=cuda)
    while True:
        for batch in loader:
            yield tuple(t.to(device, non_blocking=True) for t in batch)


def clock(device: torch.device) -> Callable[[], Any]:
    """A timestamp source: a recorded CUDA event on CUDA (read after the final sync), else perf_counter."""
    if device.type == "cuda":
        def mark() -> torch.cuda.Event:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return mark
    return time.perf_counter


def seconds_between(a: Any, b: Any) -> float:
    return a.elapsed_time(b) / 1e3 if isinstance(a, torch.cuda.Event) else b - a


def measure(model: nn.Module, objective: Callable, opt: torch.optim.Optimizer,
            batches: Iterator[tuple[Tensor, ...]], s: Settings, device: torch.device) -> StepTiming:
    """`s.warmup` then `s.timed` training steps; peak memory counts from the first warm-up step."""
    gen = torch.Generator(device=device).manual_seed(s.seed)
    model.train()
    train_step = Step(model, objective, opt)

    def step() -> None:
        x, y, mask = next(batches)
        train_step(to_model_input(x), y, mask, gen)

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(s.warmup):
        step()
    mark = clock(device)
    if cuda:
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    marks = [mark()]
    for _ in range(s.timed):
        step()
        marks.append(mark())
    if cuda:
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - t0
    times = [seconds_between(a, b) for a, b in zip(marks, marks[1:])]
    reserved = torch.cuda.max_memory_reserved(device) / GIB if cuda else float("nan")
    allocated = torch.cuda.max_memory_allocated(device) / GIB if cuda else float("nan")
    return StepTiming(1 / statistics.median(times), s.timed / wall, reserved, allocated,
                      reserved > OOM_GIB, False, s.timed)


def benchmark(model: nn.Module, objective_spec: dict[str, Any], s: Settings, device: torch.device) -> StepTiming:
    """Time the training step of a copy of `model` (built on the CPU) with `objective_spec`
    (`repro.methods.build_objective`) and a fresh SGD; a CUDA out-of-memory error gives `oom=True`."""
    seed_everything(s.seed)  # as the engine, then the kernel choice of the settings
    torch.backends.cudnn.deterministic = s.deterministic
    torch.use_deterministic_algorithms(s.deterministic, warn_only=True)
    release(device)
    try:
        return _fresh_copy_timing(model, objective_spec, s, device)
    except torch.OutOfMemoryError:
        pass  # leave the except block first, so the traceback's tensors can be freed
    release(device)
    nan = float("nan")
    return StepTiming(nan, nan, nan, nan, True, True, 0)


def _fresh_copy_timing(model: nn.Module, objective_spec: dict[str, Any], s: Settings,
                       device: torch.device) -> StepTiming:
    x, y, mask = synthetic_batches(s.warmup + s.timed, s)  # a fresh batch every step, as in training
    net = copy.deepcopy(model).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=s.lr, momentum=s.momentum)
    return measure(net, build_objective(objective_spec), opt, batch_source(x, y, mask, s, device), s, device)


def release(device: torch.device) -> None:
    """Free what earlier measurements left in the CUDA caching allocator."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def build_for_timing(name: str, s: Settings, **model_args: Any) -> nn.Module:
    """The model `name` on the CPU with the settings' init and classes (weights do not change a step's cost)."""
    return build_model(name, num_classes=s.num_classes, init=s.init, **model_args)
