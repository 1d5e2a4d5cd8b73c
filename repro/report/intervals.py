"""Which 95 % interval of the mean the tables carry: Student's t (default) or a seeded percentile bootstrap, chosen by
the artefact commands' `--ci` option. Light at import (no scipy, pandas or torch), so the CLI can name it."""

from __future__ import annotations

from repro.errors import UserError

BOOTSTRAP_SEED = 0  # of numpy's default_rng, the same for every cell: a table's intervals are reproducible
BOOTSTRAP_RESAMPLES = 9999
DESCRIPTIONS = {
    "t": "Student t-interval, mean +- t(0.975, n-1) x sample std (ddof 1) / sqrt(n) (scipy.stats.t); n = 1: no "
         "interval (empty)",
    "bootstrap": f"percentile bootstrap of the mean over seeds (scipy.stats.bootstrap, {BOOTSTRAP_RESAMPLES} "
                 f"resamples, numpy default_rng({BOOTSTRAP_SEED})); n = 1: no interval (empty); with few seeds it "
                 "cannot be wider than their range, so it understates the uncertainty the t-interval shows",
}
_chosen = ["t"]


def use_interval(method: str) -> str:
    """Make `method` (t or bootstrap) the interval of every table this process writes; the `--ci` callback."""
    if method not in DESCRIPTIONS:
        raise UserError(f"--ci takes {' or '.join(DESCRIPTIONS)}, not {method!r}")
    _chosen[0] = method
    return method


def interval_method() -> str:
    """The interval chosen (t unless `--ci bootstrap`)."""
    return _chosen[0]
