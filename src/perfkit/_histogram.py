"""perfkit's one histogram: fixed buckets, mergeable, a quantile read from the counts.

Every part that reports a percentile uses it: the cache's lookup latency
(``cache/_stats.py``), the per-statement times of ``queries/_stats.py``, the request
trends of ``metrics/trends.py`` and the demo's ``perfkit bench``. Memory is one count per
bucket however many values were added, and two histograms with the same bounds merge by
adding their counts (the fleet view sums processes this way).

``counts`` has one entry per bound (values ``<=`` it, above the previous bound) and a last
one for ``+Inf``. A quantile is interpolated linearly inside its bucket, so it is exact to
within that bucket's width: pick the bounds for the resolution you need
(:func:`log_bounds` gives a constant relative error).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence

__all__ = ["Histogram", "log_bounds", "quantile"]


def log_bounds(smallest: float, per_doubling: int, doublings: int) -> tuple[float, ...]:
    """Bucket bounds growing by ``2 ** (1 / per_doubling)`` from ``smallest``: a value is
    then known to within ``2 ** (1 / per_doubling) - 1`` of itself (8 per doubling: 9 %)."""
    growth = 2 ** (1 / per_doubling)
    return tuple(smallest * growth**i for i in range(per_doubling * doublings + 1))


def quantile(bounds: Sequence[float], counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a histogram, interpolated inside its bucket.

    ``counts`` are per bucket (not cumulative), one more than ``bounds`` for ``+Inf``;
    values in the ``+Inf`` bucket are reported as the largest bound. ``None`` when empty.
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            if i >= len(bounds):
                return float(bounds[-1])
            lower = bounds[i - 1] if i > 0 else 0.0
            fraction = (rank - seen) / count
            return lower + (bounds[i] - lower) * min(max(fraction, 0.0), 1.0)
        seen += count
    return float(bounds[-1]) if bounds else math.nan


class Histogram:
    """Counts of values in fixed buckets, with their sum, smallest and largest value.

    Not locked: the owner serializes :meth:`add` (each part already holds a lock, or folds
    values in batches, where it records).
    """

    __slots__ = ("bounds", "count", "counts", "max", "min", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        """Count ``value``."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s values (same bounds) to this histogram."""
        if other.bounds != self.bounds:
            raise ValueError("histograms with different bucket bounds cannot be merged")
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def mean(self) -> float:
        """The average value (0.0 when empty)."""
        return self.total / self.count if self.count else 0.0

    def quantile(self, q: float) -> float:
        """The ``q`` quantile, within its bucket and never outside the values seen (0.0 when
        empty)."""
        found = quantile(self.bounds, self.counts, q)
        if found is None:
            return 0.0
        return min(max(found, self.min), self.max)
