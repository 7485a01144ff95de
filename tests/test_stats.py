"""Tests for tlhelpers.stats: the sd convention, spreads as text, and small-sample intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tlhelpers.stats import (
    bootstrap_interval,
    format_spread,
    kendall_tau,
    kendall_tau_interval,
    paired_difference_interval,
    sd,
    spread_note,
)


def test_sd_is_the_sample_standard_deviation() -> None:
    assert sd([1.0, 2.0, 3.0]) == pytest.approx(1.0)  # ddof=1; np.std would give 0.816
    assert math.isnan(sd([4.0]))  # one run has no spread: no error bar is drawn
    np.testing.assert_allclose(sd([[1.0, 3.0], [2.0, 2.0]]), [math.sqrt(2), 0.0])
    assert np.isnan(sd(np.ones((3, 1)))).all()


def test_format_spread_and_note() -> None:
    assert format_spread([90.0, 92.0, 94.0], unit="%") == "92.0 ± 2.0% (n=3)"
    assert format_spread([91.25], digits=2) == "91.25"
    assert spread_note(3) == "mean ± sd over 3 runs"
    assert spread_note(1) == "one run (no error bar)"
    with pytest.raises(ValueError, match="n=0"):
        spread_note(0)


def test_bad_values_name_themselves() -> None:
    with pytest.raises(TypeError, match="text"):
        sd("1, 2")
    with pytest.raises(ValueError, match="empty"):
        format_spread([])


def test_paired_difference_interval_is_the_t_interval() -> None:
    mean, low, high = paired_difference_interval([3.0, 4.0, 5.0], [1.0, 1.0, 1.0])
    assert mean == pytest.approx(3.0)
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, df=2) * sd / sqrt(n)
    assert (low, high) == pytest.approx((3.0 - half, 3.0 + half))
    assert paired_difference_interval([1.0], [0.0])[1:] == (-math.inf, math.inf)
    with pytest.raises(ValueError, match="pair them"):
        paired_difference_interval([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="level"):
        paired_difference_interval([1.0, 2.0], [1.0, 2.0], level=95)


def test_bootstrap_interval_covers_the_estimate_and_repeats() -> None:
    values = np.arange(20.0)
    estimate, low, high = bootstrap_interval(np.mean, values, n_boot=500)
    assert estimate == pytest.approx(9.5) and low < 9.5 < high
    assert bootstrap_interval(np.mean, values, n_boot=500) == (estimate, low, high)
    with pytest.raises(ValueError, match="same length"):
        bootstrap_interval(np.mean, [1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 3 rows"):
        bootstrap_interval(np.mean, [1, 2])
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_interval(np.mean, values, n_boot=10)


def test_kendall_tau_interval_is_wide_for_seven_candidates() -> None:
    scores = [1, 2, 3, 4, 5, 6, 7]
    accuracy = [1, 3, 2, 4, 5, 7, 6]  # two swapped pairs
    tau, low, high = kendall_tau_interval(scores, accuracy, n_boot=500)
    assert tau == pytest.approx(kendall_tau(scores, accuracy)) and tau == pytest.approx(17 / 21)
    assert low < tau <= high and high - low > 0.3  # seven candidates cannot pin τ down
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
