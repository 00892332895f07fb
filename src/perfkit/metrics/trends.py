"""Per-minute trends of requests, errors, response times and sampled gauges.

Response times are counted in perfkit's bucket layout (``perfkit._histogram``, 50 µs to
~56 min, 9.05 %), so a minute's p95 is known to within 9.05 % and processes merge by
adding their counts.

Requests are recorded as they finish (one short lock); gauges that need a source read
(cache hit rate, slow-query share, queue depth) are set by :meth:`Trends.sample`. The
history is a deque of fixed length, so memory stays bounded (24 h of minutes by default).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Sequence

import msgspec

from perfkit._histogram import quantile as estimate_quantile
from perfkit.metrics.registry import DEFAULT_BUCKETS

__all__ = [
    "TrendBucket",
    "TrendPoint",
    "Trends",
    "estimate_quantile",
    "merge_buckets",
    "merge_trends",
]


class TrendPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One time bucket of the trends.

    ``start`` is the bucket's start (unix time). Response times are in milliseconds; the
    p95 is estimated from fixed buckets. Sampled fields are ``None`` when not sampled.
    """

    start: float
    requests: int
    errors: int
    slow: int
    avg_ms: float | None
    p95_ms: float | None
    cache_hit_rate: float | None = None
    slow_query_pct: float | None = None
    queue_depth: int | None = None


class TrendBucket(msgspec.Struct, array_like=True, frozen=True):
    """One time bucket's raw numbers, as a process publishes them for the fleet view.

    ``index`` is the bucket's start over its length; ``total`` the seconds of all
    requests; ``counts`` per histogram bucket (not cumulative), the last for ``+Inf``.
    """

    index: int
    requests: int
    errors: int
    slow: int
    total: float
    counts: list[int]
    cache_hit_rate: float | None = None
    slow_query_pct: float | None = None
    queue_depth: int | None = None


class _Bucket:
    __slots__ = (
        "cache_hit_rate",
        "counts",
        "errors",
        "index",
        "queue_depth",
        "requests",
        "slow",
        "slow_query_pct",
        "total",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.requests = 0
        self.errors = 0
        self.slow = 0
        self.total = 0.0
        # Sparse (bucket -> count): a minute's requests fill a few of the 210 buckets, and
        # a day of minutes is kept.
        self.counts: dict[int, int] = {}
        self.cache_hit_rate: float | None = None
        self.slow_query_pct: float | None = None
        self.queue_depth: int | None = None


class Trends:
    """A bounded history of time buckets (``bucket_seconds`` long, ``history`` of them)."""

    def __init__(
        self,
        *,
        bucket_seconds: float = 60.0,
        history: int = 24 * 60,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bucket_seconds = bucket_seconds
        self.history = history
        self._bounds = tuple(buckets)
        self._clock = clock
        self._buckets: deque[_Bucket] = deque(maxlen=history)
        self._lock = threading.Lock()

    def _current(self) -> _Bucket:
        # Caller holds the lock.
        index = int(self._clock() // self.bucket_seconds)
        if self._buckets and self._buckets[-1].index == index:
            return self._buckets[-1]
        bucket = _Bucket(index)
        self._buckets.append(bucket)
        return bucket

    def record(self, seconds: float, *, error: bool = False, slow: bool = False) -> None:
        """Count one finished request taking ``seconds`` in the current bucket."""
        i = bisect_left(self._bounds, seconds)
        with self._lock:
            bucket = self._current()
            bucket.requests += 1
            bucket.total += seconds
            bucket.counts[i] = bucket.counts.get(i, 0) + 1
            if error:
                bucket.errors += 1
            if slow:
                bucket.slow += 1

    def sample(
        self,
        *,
        cache_hit_rate: float | None = None,
        slow_query_pct: float | None = None,
        queue_depth: int | None = None,
    ) -> None:
        """Set sampled gauges on the current bucket (``None`` leaves a value as it is)."""
        with self._lock:
            bucket = self._current()
            if cache_hit_rate is not None:
                bucket.cache_hit_rate = cache_hit_rate
            if slow_query_pct is not None:
                bucket.slow_query_pct = slow_query_pct
            if queue_depth is not None:
                bucket.queue_depth = queue_depth

    @property
    def bounds(self) -> tuple[float, ...]:
        """The upper bounds (seconds) of the response-time histogram of each bucket."""
        return self._bounds

    def export(self, *, last: int | None = None) -> list[TrendBucket]:
        """The raw buckets, oldest first (the most recent ``last`` bucket lengths only)."""
        size = len(self._bounds) + 1
        with self._lock:
            buckets = [
                TrendBucket(b.index, b.requests, b.errors, b.slow, b.total, _dense(b.counts, size),
                            b.cache_hit_rate, b.slow_query_pct, b.queue_depth)
                for b in self._buckets
            ]  # fmt: skip
        if last is not None and buckets:
            buckets = [b for b in buckets if b.index > buckets[-1].index - last]
        return buckets

    def points(self, *, last: int | None = None) -> list[TrendPoint]:
        """The buckets oldest first, quiet buckets in between filled with zeros.

        ``last`` limits the answer to the most recent ``last`` buckets.
        """
        return merge_trends(
            [self.export()], self._bounds, self.bucket_seconds, history=self.history, last=last
        )


def merge_trends(
    exports: Sequence[Sequence[TrendBucket]],
    bounds: Sequence[float],
    bucket_seconds: float,
    *,
    history: int,
    last: int | None = None,
) -> list[TrendPoint]:
    """The points of several processes' buckets, merged per bucket index: counts and
    histograms summed (so the p95 comes from the merged histogram), sampled values
    averaged (rates) or the largest taken (queue depth, read from one shared server)."""
    merged = merge_buckets(exports)
    if not merged:
        return []
    newest = max(merged)
    oldest = max(min(merged), newest - history + 1)
    if last is not None:
        oldest = max(oldest, newest - last + 1)
    points = []
    for index in range(oldest, newest + 1):
        start = index * bucket_seconds
        found = merged.get(index)
        if found is None:
            points.append(TrendPoint(start=start, requests=0, errors=0, slow=0,
                                     avg_ms=None, p95_ms=None))  # fmt: skip
            continue
        # A minute only processes on another bucket layout saw has no p95 (see _BucketSum).
        fits = len(found.counts) == len(bounds) + 1
        p95 = estimate_quantile(bounds, found.counts, 0.95) if fits else None
        points.append(
            TrendPoint(
                start=start,
                requests=found.requests,
                errors=found.errors,
                slow=found.slow,
                avg_ms=found.total / found.requests * 1000 if found.requests else None,
                p95_ms=p95 * 1000 if p95 is not None else None,
                cache_hit_rate=found.cache_hit_rate,
                slow_query_pct=found.slow_query_pct,
                queue_depth=found.queue_depth,
            )
        )
    return points


def merge_buckets(exports: Iterable[Sequence[TrendBucket]]) -> dict[int, TrendBucket]:
    """Several processes' buckets summed per index (see :func:`merge_trends`); sampled
    rates are averaged over the processes that sampled them, the queue depth (read from
    one shared server) is the largest."""
    sums: dict[int, _BucketSum] = {}
    for buckets in exports:
        for bucket in buckets:
            found = sums.get(bucket.index)
            if found is None:
                sums[bucket.index] = _BucketSum(bucket)
            else:
                found.add(bucket)
    return {index: found.bucket() for index, found in sums.items()}


class _BucketSum:
    """One bucket index's numbers being added up (mutable: one object per index)."""

    __slots__ = ("counts", "depth", "errors", "hit_rates", "index", "requests", "slow",
                 "slow_pcts", "total")  # fmt: skip

    def __init__(self, first: TrendBucket) -> None:
        self.index = first.index
        self.requests, self.errors, self.slow = first.requests, first.errors, first.slow
        self.total = first.total
        self.counts = list(first.counts)
        self.hit_rates = [first.cache_hit_rate]
        self.slow_pcts = [first.slow_query_pct]
        self.depth = first.queue_depth

    def add(self, other: TrendBucket) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.slow += other.slow
        self.total += other.total
        if len(other.counts) > len(self.counts):
            # Another bucket layout (a process of an older perfkit, during a deploy): the
            # finer one is kept, the other's requests count but not its histogram.
            self.counts = list(other.counts)
        elif len(other.counts) == len(self.counts):
            for i, count in enumerate(other.counts):
                self.counts[i] += count
        self.hit_rates.append(other.cache_hit_rate)
        self.slow_pcts.append(other.slow_query_pct)
        if other.queue_depth is not None:
            self.depth = (
                other.queue_depth if self.depth is None else max(self.depth, other.queue_depth)
            )

    def bucket(self) -> TrendBucket:
        return TrendBucket(self.index, self.requests, self.errors, self.slow, self.total,
                           self.counts, _mean(self.hit_rates), _mean(self.slow_pcts),
                           self.depth)  # fmt: skip


def _dense(counts: dict[int, int], size: int) -> list[int]:
    dense = [0] * size
    for i, count in counts.items():
        dense[i] = count
    return dense


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None
