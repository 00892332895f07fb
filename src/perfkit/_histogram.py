"""perfkit's one histogram: fixed buckets, mergeable, a quantile read from the counts.

Every part that reports a percentile uses it: the request durations and their trends
(``metrics/registry.py``, ``metrics/trends.py``), the cache's lookup latency
(``cache/_stats.py``), the per-statement times of ``queries/_stats.py`` and the demo's
``perfkit bench``. Memory is one count per bucket however many values were added, and two
histograms with the same bounds merge by adding their counts (the fleet view sums
processes this way).

``counts`` has one entry per bound (values ``<=`` it, above the previous bound) and a last
one for ``+Inf``. A quantile is interpolated linearly inside its bucket, so it is exact to
within that bucket's width: pick the bounds for the resolution you need
(:func:`log_bounds` gives a constant relative error).

:data:`DEFAULT_BOUNDS` is the layout every part uses unless told otherwise: bounds
``FLOOR * 2 ** (i / 8)`` for ``i = 0 .. 208``, i.e. 50 µs to 3 355 s (~56 min) in buckets
of constant relative width ``2 ** (1 / 8) - 1`` = 9.05 %. A quantile that falls between the
floor and the top bound is within 9.05 % of the true value (the estimate and the true
value share one bucket); below the floor it is within ``FLOOR`` absolute; above the top
bound it reads the largest value seen (or the top bound).
"""

from __future__ import annotations

import functools
import itertools
import math
from bisect import bisect_left
from collections.abc import Sequence

__all__ = [
    "DEFAULT_BOUNDS",
    "FLOOR",
    "PER_DOUBLING",
    "Histogram",
    "exposed_indices",
    "log_bounds",
    "quantile",
    "rebucket",
    "relative_error",
]

FLOOR = 50e-6
"""The smallest bound (seconds) of :data:`DEFAULT_BOUNDS`: quantiles below it are known to
within it, absolute."""
PER_DOUBLING = 8
"""Buckets per doubling of :data:`DEFAULT_BOUNDS`: each is ``2 ** (1 / 8)`` wide (9.05 %)."""
DOUBLINGS = 26  # 50 µs * 2**26 = 3 355 s, ~56 min: the longest statement or request kept apart
# A histogram with more bounds than this is exposed to Prometheus with one per doubling.
MAX_EXPOSED = 30


def log_bounds(
    smallest: float = FLOOR, per_doubling: int = PER_DOUBLING, doublings: int = DOUBLINGS
) -> tuple[float, ...]:
    """Bucket bounds ``smallest * 2 ** (i / per_doubling)``: a quantile between the first
    and the last is then within ``2 ** (1 / per_doubling) - 1`` of itself (8: 9.05 %).

    The defaults are :data:`DEFAULT_BOUNDS`; give another ``smallest`` to move the floor.
    """
    # 2 ** (i / k) (not growth ** i) makes every k-th bound an exact doubling: tidy ``le``.
    return tuple(smallest * 2 ** (i / per_doubling) for i in range(per_doubling * doublings + 1))


DEFAULT_BOUNDS = log_bounds()
"""perfkit's bucket layout (see the module doc): 209 bounds, 50 µs to ~56 min, 9.05 %."""


def relative_error(bounds: Sequence[float]) -> float:
    """The largest relative width of a bucket between the first and the last bound: how
    far (relatively) a quantile read from these bounds can be from the true one."""
    return max((b / a - 1 for a, b in itertools.pairwise(bounds) if a > 0), default=math.inf)


@functools.lru_cache(maxsize=64)
def exposed_indices(bounds: tuple[float, ...]) -> tuple[int, ...]:
    """The indices of the bounds shown as ``le`` in a Prometheus exposition: all of them,
    or for a histogram of more than :data:`MAX_EXPOSED` bounds one per doubling (each
    bound kept is at least twice the one kept before it, starting from the first), so a
    series has ~28 buckets, not 210. The counts in between still add up exactly: each
    ``le`` is cumulative."""
    if len(bounds) <= MAX_EXPOSED:
        return tuple(range(len(bounds)))
    kept = [0]
    for i, bound in enumerate(bounds):
        # The tolerance takes the rounding of 2 ** (i / k) for an exact doubling.
        if bound >= bounds[kept[-1]] * 2 * (1 - 1e-9):
            kept.append(i)
    return tuple(kept)


def rebucket(bounds: Sequence[float], counts: Sequence[int], onto: Sequence[float]) -> list[int]:
    """``counts`` (over ``bounds``, with ``+Inf``) moved onto the bounds ``onto``: each
    bucket's count goes to the bucket of ``onto`` that holds its upper bound (a value
    is never moved down). How a process still on another layout is merged."""
    moved = [0] * (len(onto) + 1)
    for bound, count in zip((*bounds, math.inf), counts, strict=True):
        moved[bisect_left(onto, bound)] += count
    return moved


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
