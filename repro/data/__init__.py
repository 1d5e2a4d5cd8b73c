"""Datasets: registry, synthetic generators, loaders and `repro data check`."""
