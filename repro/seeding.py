"""Seeding and device selection."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from repro.errors import UserError


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) and ask for deterministic kernels (cuBLAS's workspace setting,
    which they need, is made when `repro` is imported). `warn_only`: an op with no deterministic CUDA kernel warns
    instead of failing (e.g. adaptive average pooling's backward, deterministic in practice at a 1x1 output)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def kernel_settings() -> dict[str, object]:
    """The numeric settings training runs under, for provenance: deterministic kernels, cuDNN's choice, TF32 (off
    for matmuls and on for cuDNN convolutions: PyTorch's defaults, left as they are) and cuBLAS's workspace."""
    return {"deterministic": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


def seed_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: seed numpy and python in each worker from the seed torch gave it."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def resolve_device(spec: str) -> torch.device:
    """`auto` (CUDA when present, else CPU), `cpu`, `cuda` or `cuda:i`; a clear ValueError otherwise."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or (spec.startswith("cuda:") and spec[5:].isdigit()):
        if not torch.cuda.is_available():
            raise UserError(f"--device {spec}: CUDA is not available on this machine; use --device cpu or auto")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return dev
    raise UserError(f"--device {spec!r} is not one of auto, cpu, cuda, cuda:<i>")
