"""Aggregation and paper comparison against a golden CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from repro.papers import Tolerance
from repro.report.tables import aggregate, compare, mean_interval, published_test

GOLDEN = Path(__file__).parent / "golden_table.csv"


def test_aggregate_and_compare_match_golden():
    per_run = pd.DataFrame({
        "model": ["CNN"] * 10 + ["ResNet"] * 2,
        "method": ["Classify"] * 10 + ["Actdiff"] * 2,
        "best_epoch": [380, 1, 0, 0, 0, 0, 0, 0, 0, 0, 10, 30],
    })
    published = pd.DataFrame({"model": ["ResNet", "CNN", "UNet"], "method": ["Actdiff", "Classify", "Classify"],
                               "best_epoch_mean": ["147.60", "38.10", "0.00"],
                               "best_epoch_std": ["148.59", "120.13", "0.00"], "n": ["10", "", "10"]}).astype(str)
    agg = aggregate(per_run, ["model", "method"], ["best_epoch"])
    table = compare(agg, published, ["model", "method"],
                    {"best_epoch": ("best_epoch_mean", "best_epoch_std", Tolerance(abs=25.0))})
    got = table.to_csv(index=False, float_format="%.4f")
    assert got == GOLDEN.read_text()
    # the spec's check: {380, 1, 0 x 8} gives 38.10 ± 120.13 with ddof = 1
    cnn = table[table["model"] == "CNN"].iloc[0]
    assert round(cnn["best_epoch_mean"], 2) == 38.10 and round(cnn["best_epoch_std"], 2) == 120.13


def test_interval_and_published_test_against_scipy_on_hand_made_numbers():
    per_run = pd.DataFrame({"method": ["A", "A", "A", "B", "C", "C"], "acc": [0.6, 0.7, 0.9, 0.4, 0.5, 0.8]})
    published = pd.DataFrame({"method": ["A", "B", "C"], "acc": ["0.50", "0.45", "0.65"],
                              "acc_std": ["0.05", "0.10", ""], "n": ["10", "10", "3"]})
    table = compare(aggregate(per_run, ["method"], ["acc"]), published, ["method"],
                    {"acc": ("acc", "acc_std", Tolerance(abs=0.05))}).set_index("method")
    a = [0.6, 0.7, 0.9]
    low, high = stats.t.interval(0.95, 2, loc=np.mean(a), scale=stats.sem(a))
    assert table.loc["A", "acc_ci_low"] == pytest.approx(low) and table.loc["A", "acc_ci_high"] == pytest.approx(high)
    p = stats.ttest_ind_from_stats(np.mean(a), np.std(a, ddof=1), 3, 0.50, 0.05, 10, equal_var=False).pvalue
    assert table.loc["A", "acc_p_published"] == pytest.approx(p)
    assert table.loc["A", "acc_published_test"] == ("consistent" if p >= 0.05 else "inconsistent")
    # n = 1: no interval and no test, and the table says why; a published value with no std: not tested
    assert np.isnan(table.loc["B", "acc_ci_low"]) and np.isnan(table.loc["B", "acc_p_published"])
    assert table.loc["B", "acc_published_test"] == "not tested: our n < 2"
    assert np.isnan(table.loc["C", "acc_p_published"])
    assert table.loc["C", "acc_published_test"] == "not tested: no published std"
    assert table.loc["C", "acc_ci_high"] > table.loc["C", "acc_mean"] > table.loc["C", "acc_ci_low"]


def test_published_test_flags_a_far_published_value_as_inconsistent():
    p, text = published_test(0.9, 0.01, 10, 0.5, 0.01, 10)
    assert p < 1e-10 and text == "inconsistent"
    assert published_test(0.5, 0.0, 3, 0.5, 0.0, 10)[1] == "consistent (no spread)"
    assert published_test(0.5, 0.1, 3, 0.5, 0.1, float("nan"))[1] == "not tested: no published n"


@pytest.fixture
def bootstrap():
    """`--ci bootstrap` for one test, then the default t-interval again."""
    from repro.report.intervals import use_interval

    use_interval("bootstrap")
    yield
    use_interval("t")


def test_bootstrap_interval_is_scipys_seeded_one_and_named(bootstrap):
    from repro.report.tables import stats_methods

    values = [0.61, 0.70, 0.52, 0.66]
    per_run = pd.DataFrame({"row": ["a"] * 4 + ["b"], "v": values + [0.9]})
    agg = aggregate(per_run, ["row"], ["v"]).set_index("row")
    want = stats.bootstrap((np.array(values),), np.mean, n_resamples=9999, method="percentile",
                           random_state=np.random.default_rng(0)).confidence_interval
    assert agg.loc["a", "v_ci_low"] == pytest.approx(want.low) and agg.loc["a", "v_ci_high"] == pytest.approx(want.high)
    t_low = mean_interval(pd.Series([np.mean(values)]), pd.Series([np.std(values, ddof=1)]), pd.Series([4]))[0][0]
    assert agg.loc["a", "v_ci_low"] != pytest.approx(t_low)  # not the t-interval
    assert np.isnan(agg.loc["b", "v_ci_low"]) and np.isnan(agg.loc["b", "v_ci_high"])  # n = 1: no interval
    assert "percentile bootstrap" in stats_methods()["ci"] and "default_rng(0)" in stats_methods()["ci"]


def test_the_t_interval_is_the_default_and_ci_takes_two_methods():
    from repro.errors import UserError
    from repro.report.intervals import use_interval
    from repro.report.tables import stats_methods

    assert "Student t-interval" in stats_methods()["ci"]
    with pytest.raises(UserError, match="--ci takes t or bootstrap"):
        use_interval("jackknife")


def test_a_tolerance_that_spans_every_possible_value_cannot_fail():
    """Best epoch 0..1 (2 epochs) against 38 +- 120 with 25 + 2 std: any value passes, so the flag says so; against
    0 +- 0 a best epoch of 30 could fail, so it stays a real flag."""
    from repro.report.tables import CANNOT_FAIL

    per_run = pd.DataFrame({"row": ["short", "long"], "e": [1, 0]})
    published = pd.DataFrame({"row": ["short", "long"], "e_mean": ["38.10", "0.00"], "e_std": ["120.13", "0.00"]})
    epochs = {("short",): 2, ("long",): 500}
    table = compare(aggregate(per_run, ["row"], ["e"]), published, ["row"],
                    {"e": ("e_mean", "e_std", Tolerance(abs=25.0))}, {"e": lambda key: (0, epochs[key] - 1)})
    assert list(table["e_within_tol"]) == [CANNOT_FAIL, True]
