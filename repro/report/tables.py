"""Aggregate seeds with pandas and set the paper's numbers beside them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import stats

from repro.papers import PUBLISHED, Tolerance
from repro.report.intervals import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, DESCRIPTIONS, interval_method
from repro.runs.store import atomic_write_json, atomic_write_text

STAT_SUFFIXES = ("mean", "std", "n", "ci_low", "ci_high", "published", "published_std", "published_n", "diff",
                 "within_tol", "p_published", "published_test")
CONFIDENCE = 0.95  # of the interval of each mean
ALPHA = 0.05  # of every test against the published value and of every claim
PUBLISHED_N = "n"  # the published table's column of seeds per row, where the paper states them
TESTS = {
    "p_published": "consistency with the published value: Welch's two-sided t-test from summary statistics "
                   f"(scipy.stats.ttest_ind_from_stats, equal_var=False; our std as the table gives it); alpha {ALPHA}; "
                   "not tested where the paper gives no std or no number of seeds, or we have n < 2",
}


def stats_methods() -> dict[str, str]:
    """The methods of the interval (as chosen by `--ci`) and of the tests, for a provenance."""
    return {"ci": f"{CONFIDENCE:.0%} confidence interval of the mean over seeds: {DESCRIPTIONS[interval_method()]}",
            **TESTS}


def mean_interval(mean: pd.Series, std: pd.Series, n: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The t-interval of each mean from its sample std (ddof 1) and n; NaN where n < 2 (no interval)."""
    n = n.astype(float)
    half = stats.t.ppf((1 + CONFIDENCE) / 2, (n - 1).where(n >= 2)) * std / np.sqrt(n)
    return mean - half, mean + half


def bootstrap_interval(values: pd.Series) -> tuple[float, float]:
    """The seeded percentile bootstrap interval of the mean of `values` (NaN dropped); NaN, NaN below 2 values."""
    x = values.dropna().to_numpy(float)
    if len(x) < 2:
        return float("nan"), float("nan")
    ci = stats.bootstrap((x,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=CONFIDENCE,
                         method="percentile", random_state=np.random.default_rng(BOOTSTRAP_SEED)).confidence_interval
    return float(ci.low), float(ci.high)


def read_published(paper: str, artefact: str) -> pd.DataFrame:
    """The paper's numbers exactly as printed (strings; empty where the paper gives none)."""
    return pd.read_csv(PUBLISHED / f"{paper}_{artefact}.csv", dtype=str, keep_default_na=False)


AGGREGATES = ("mean", "std", "n", "ci_low", "ci_high")


def aggregate(per_run: pd.DataFrame, keys: list[str], values: list[str], ddof: int = 1) -> pd.DataFrame:
    """Mean, std (sample, ddof=1, unless told otherwise), n and the 95 % interval of the mean over seeds of each value
    column, per key (the t-interval, always from the ddof-1 std, or with `--ci bootstrap` the bootstrap one; see
    `stats_methods`); keys keep first-seen order. No runs (an empty frame): the empty table of those columns."""
    if per_run.empty:
        return pd.DataFrame(columns=keys + [f"{v}_{s}" for v in values for s in AGGREGATES])
    grouped = per_run.groupby(keys, sort=False)[values]
    mean, std, n, sample_std = grouped.mean(), grouped.std(ddof=ddof), grouped.count(), grouped.std(ddof=1)
    out = pd.DataFrame(index=mean.index)
    for v in values:
        out[f"{v}_mean"], out[f"{v}_std"], out[f"{v}_n"] = mean[v], std[v], n[v]
        if interval_method() == "bootstrap":
            bounds = per_run.groupby(keys, sort=False)[v].apply(bootstrap_interval)
            out[f"{v}_ci_low"], out[f"{v}_ci_high"] = [b[0] for b in bounds], [b[1] for b in bounds]
        else:
            out[f"{v}_ci_low"], out[f"{v}_ci_high"] = mean_interval(mean[v], sample_std[v], n[v])
    return out.reset_index()


def published_test(mean: float, std: float, n: float, pub: float, pub_std: float, pub_n: float
                   ) -> tuple[float, str]:
    """Welch's two-sided test of our mean (sample std, n seeds) against the published mean, std and n: its p and
    "consistent" / "inconsistent" at ALPHA, or p NaN and why it cannot be tested."""
    if mean != mean or pub != pub:
        return float("nan"), ""
    missing = [why for why, bad in (("no published std", pub_std != pub_std), ("no published n", pub_n != pub_n),
                                    ("our n < 2", not n >= 2)) if bad]
    if missing:
        return float("nan"), "not tested: " + ", ".join(missing)
    p = float(stats.ttest_ind_from_stats(mean, std, n, pub, pub_std, pub_n, equal_var=False).pvalue)
    if p != p:  # both spreads zero: the means are equal (consistent) or not
        return p, "consistent (no spread)" if mean == pub else "inconsistent (no spread)"
    return p, "consistent" if p >= ALPHA else "inconsistent"


def _number(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column.replace("", None), errors="coerce")


CANNOT_FAIL = "cannot fail"  # the within-tolerance flag of a cell whose tolerance spans every value it can take

Bounds = Callable[[tuple], tuple[float, float]]  # a row's key values -> the least and greatest value it can take


def cannot_fail(tol: Tolerance, published: float, published_std: float, low: float, high: float) -> bool:
    """Whether every value in [low, high] is within tolerance of the published one (the flag would say nothing)."""
    return tol.within(low - published, published_std) and tol.within(high - published, published_std)


def compare(agg: pd.DataFrame, published: pd.DataFrame, keys: list[str],
            columns: dict[str, tuple[str, str, Tolerance]], bounds: dict[str, Bounds] | None = None) -> pd.DataFrame:
    """Join published values: `columns[value] = (published column, published std column, tolerance)`; the
    published seeds per row are its PUBLISHED_N column where the paper states them. Beside the tolerance flag,
    `published_test` of each cell (`<value>_p_published`, `<value>_published_test`). Where `bounds[value]` gives
    the range a row's value can take (accuracy 0..1, best epoch 0..epochs-1) and the tolerance spans all of it,
    the flag is CANNOT_FAIL instead of true.

    Rows follow the published table's order; a published row with no runs keeps empty reproduced cells.
    """
    table = published[keys].merge(agg, on=keys, how="left")
    for value in columns:
        if f"{value}_n" in table:
            table[f"{value}_n"] = table[f"{value}_n"].astype("Int64")
    pub_n_text = published[PUBLISHED_N] if PUBLISHED_N in published else pd.Series("", index=published.index)
    for value, (pub_col, std_col, tol) in columns.items():
        pub = published[pub_col]
        pub_num, pub_n = _number(pub), _number(pub_n_text)
        pub_std = _number(published[std_col]) if std_col else pub_num * float("nan")
        diff = table[f"{value}_mean"] - pub_num.values
        table[f"{value}_published"] = pub.values
        table[f"{value}_published_std"] = published[std_col].values if std_col else ""
        table[f"{value}_published_n"] = pub_n_text.values
        table[f"{value}_diff"] = diff
        table[f"{value}_within_tol"] = [
            "" if d != d else bool(tol.within(d, s)) for d, s in zip(diff, pub_std.values)
        ]
        if bounds and value in bounds:
            rows = zip(table[keys].itertuples(index=False, name=None), pub_num, pub_std, diff)
            table[f"{value}_within_tol"] = [
                CANNOT_FAIL if d == d and cannot_fail(tol, p, s, *bounds[value](key)) else flag
                for (key, p, s, d), flag in zip(rows, table[f"{value}_within_tol"])]
        tests = [published_test(*cell) for cell in zip(table[f"{value}_mean"], table[f"{value}_std"],
                                                      table[f"{value}_n"].astype(float), pub_num, pub_std, pub_n)]
        table[f"{value}_p_published"] = [p for p, _ in tests]
        table[f"{value}_published_test"] = [t for _, t in tests]
    ordered = keys + [f"{v}_{s}" for v in columns for s in STAT_SUFFIXES]
    return table[ordered]


def write_table(table: pd.DataFrame, path: Path, prov: dict[str, Any]) -> Path:
    """Write the CSV (4 decimals) and its provenance sidecar `<name>.json` atomically."""
    atomic_write_text(path, table.to_csv(index=False, float_format="%.4f"))
    atomic_write_json(path.with_suffix(".json"), prov)
    return path


def print_table(table: pd.DataFrame, title: str, keys: list[str], values: list[str], console: Any = None) -> None:
    """A compact rich rendering: per value, `ours mean±std [95 % CI] | paper mean±std (Welch p)`, green within
    tolerance."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    t = Table(title=title, caption="ours mean±std [95 % CI] | paper (Welch p against it; - not tested); "
                                   "green = within tolerance, red = outside")
    for col in [*keys, "n", *values]:
        t.add_column(col, justify="left" if col in keys else "right")
    for _, row in table.iterrows():
        cells = [str(row[k]) for k in keys]
        n = row[f"{values[0]}_n"]
        cells.append("-" if pd.isna(n) else str(int(n)))
        for v in values:
            mean, std = row[f"{v}_mean"], row[f"{v}_std"]
            ours = "-" if pd.isna(mean) else f"{mean:.2f}" + ("" if pd.isna(std) else f"±{std:.2f}")
            lo, hi = row[f"{v}_ci_low"], row[f"{v}_ci_high"]
            ours += "" if pd.isna(lo) else f" [{lo:.2f}, {hi:.2f}]"
            pstd, p = row[f"{v}_published_std"], row[f"{v}_p_published"]
            paper = f"{row[f'{v}_published']}" + (f"±{pstd}" if pstd else "")
            paper += "" if pd.isna(mean) else " (-)" if pd.isna(p) else f" (p={p:.2g})"
            ok = row[f"{v}_within_tol"]
            colour = "green" if ok is True else "red" if ok is False else "white"
            paper += " (tolerance cannot fail)" if ok == CANNOT_FAIL else ""
            cells.append(f"[{colour}]{ours}[/{colour}] | {paper}")
        t.add_row(*cells)
    console.print(t)
