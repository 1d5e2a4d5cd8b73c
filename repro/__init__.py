"""repro: regenerate the tables and figures of four papers on spurious-feature training."""

__version__ = "0.1.0"
