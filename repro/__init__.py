"""repro: regenerate the tables and figures of four papers on spurious-feature training."""

import os

# Deterministic cuBLAS (`repro.seeding.seed_everything`) needs this before the first cuBLAS handle exists: set on
# the package's import, before any CUDA work of repro, and inherited by its worker processes.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

__version__ = "0.1.0"
