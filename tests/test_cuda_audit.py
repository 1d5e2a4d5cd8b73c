"""The CUDA path's rules that hold without a GPU: cuBLAS's deterministic workspace is set on importing repro,
device copies of constant weights are made once, reduced precision only where cfaug's spec asks (C-10), and the
kernel settings a run trains under are recorded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import torch

from repro.methods import Constant
from repro.seeding import kernel_settings, seed_everything

REPRO = Path(__file__).resolve().parents[1] / "repro"
AMP_FILES = {"engine/step.py"}  # C-10 fp16 AMP, where cfaug's recipe asks for it


def test_cublas_workspace_is_set_on_importing_repro():
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    out = subprocess.run([sys.executable, "-c", "import os, repro; print(os.environ['CUBLAS_WORKSPACE_CONFIG'])"],
                         env=env, capture_output=True, text=True, check=True, cwd=REPRO.parent)
    assert out.stdout.strip() == ":4096:8"


def test_a_constant_is_copied_once_per_device_and_dtype():
    c = Constant(torch.tensor([1.0, 3.0], dtype=torch.float64))
    a = c.on(torch.device("cpu"), torch.float32)
    assert a is c.on(torch.device("cpu"), torch.float32) and a.dtype == torch.float32
    assert c.on(torch.device("cpu")).dtype == torch.float64 and torch.equal(a.double(), c.value)


def test_reduced_precision_only_in_cfaug_amp():
    """autocast, GradScaler and bf16 appear only in the engine's step, which applies cfaug's C-10 AMP (TAP stores
    teacher saliency maps in float16, §5.2: storage, not arithmetic)."""
    pattern = re.compile(r"autocast|GradScaler|bfloat16|\.half\(\)")
    users = {str(p.relative_to(REPRO)) for p in REPRO.rglob("*.py") if pattern.search(p.read_text())}
    assert users == AMP_FILES


def test_kernel_settings_are_deterministic_after_seeding():
    seed_everything(0)
    settings = kernel_settings()
    assert settings["deterministic"] and settings["cudnn_deterministic"] and not settings["cudnn_benchmark"]
    assert settings["cublas_workspace"] == ":4096:8" and settings["tf32_matmul"] is False
