"""perfkit._histogram, the one quantile every part reports (cache, queries, trends, bench)."""

from __future__ import annotations

import itertools
import random

import pytest

from perfkit._histogram import (
    DEFAULT_BOUNDS,
    Histogram,
    exposed_indices,
    log_bounds,
    quantile,
    rebucket,
)
from perfkit.metrics.trends import estimate_quantile


def test_quantile_interpolates_inside_the_bucket() -> None:
    # Ten values in (10, 20]: the median is half way through that bucket.
    assert quantile((10.0, 20.0), [0, 10, 0], 0.5) == pytest.approx(15.0)
    assert quantile((10.0, 20.0), [0, 0, 0], 0.5) is None
    # Values above the last bound are reported as that bound.
    assert quantile((10.0, 20.0), [0, 0, 4], 0.99) == 20.0


def test_log_bounds_give_a_constant_relative_resolution() -> None:
    rng = random.Random(7)
    values = sorted(rng.lognormvariate(-5, 1.5) for _ in range(20_000))
    histogram = Histogram(log_bounds(1e-6, 16, 30))
    for value in values:
        histogram.add(value)
    width = 2 ** (1 / 16) - 1
    for q in (0.5, 0.95, 0.99):
        exact = values[int(q * len(values)) - 1]
        assert abs(histogram.quantile(q) - exact) / exact <= width, q


def test_merged_histograms_answer_as_one_that_saw_every_value() -> None:
    bounds = log_bounds(1e-3, 8, 12)
    rng = random.Random(3)
    first, second, both = Histogram(bounds), Histogram(bounds), Histogram(bounds)
    for n in range(2_000):
        value = rng.expovariate(20)
        (first if n % 3 else second).add(value)
        both.add(value)
    first.merge(second)
    assert first.counts == both.counts
    assert (first.count, first.min, first.max) == (both.count, both.min, both.max)
    assert first.total == pytest.approx(both.total)
    assert first.quantile(0.95) == both.quantile(0.95)
    with pytest.raises(ValueError, match="different bucket bounds"):
        first.merge(Histogram(bounds[1:]))


def test_a_quantile_never_leaves_the_values_seen() -> None:
    histogram = Histogram((1.0, 10.0))
    histogram.add(4.0)
    assert histogram.quantile(0.01) == histogram.quantile(0.99) == 4.0
    assert Histogram((1.0,)).quantile(0.5) == 0.0


def test_trends_estimate_quantile_is_the_shared_one() -> None:
    # The public name of perfkit.metrics.trends stays, and is the one implementation.
    assert estimate_quantile is quantile


def test_prometheus_sees_one_bound_per_doubling_of_a_fine_layout() -> None:
    shown = [DEFAULT_BOUNDS[i] for i in exposed_indices(DEFAULT_BOUNDS)]
    assert len(shown) == 27 and shown[:3] == [50e-6, 100e-6, 200e-6]
    assert all(b == pytest.approx(2 * a) for a, b in itertools.pairwise(shown))
    # A histogram of a user's few bounds is shown as it is.
    assert exposed_indices((0.1, 0.5, 1.0)) == (0, 1, 2)


def test_rebucket_moves_counts_up_to_the_bound_holding_theirs() -> None:
    # (0, 5], (5, 10], +Inf onto 1, 5, 20: nothing is moved down, nothing is lost.
    assert rebucket((5.0, 10.0), [3, 2, 1], (1.0, 5.0, 20.0)) == [0, 3, 2, 1]
