"""Counters of a cache service, and the ``CacheStats`` struct that reports them."""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Callable
from typing import Annotated

import msgspec

from perfkit._histogram import quantile
from perfkit._stat_kinds import CounterField, DurationField, GaugeField

# Upper bounds (ms) of the latency buckets: fixed, so memory never grows.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
)  # fmt: skip


class CacheStats(msgspec.Struct, frozen=True, kw_only=True):
    """What a cache service has done since it was created (or ``reset_stats()``).

    ``keys`` is exact when the Redis DB holds at most 10 000 keys, else an estimate from a
    sample (``keys_estimated`` says which). Redis fields are ``None`` while Redis is away.
    """

    hits: Annotated[int, CounterField("Cache lookups that found a value.")]
    misses: Annotated[int, CounterField("Cache lookups that found nothing.")]
    hit_rate: Annotated[
        float, GaugeField("Hits over lookups since start (0..1).", name="hit_ratio", mode="mean")
    ]
    sets: Annotated[int, CounterField("Values written to the cache.")]
    deletes: Annotated[int, CounterField("Keys deleted or invalidated.")]
    errors: Annotated[int, CounterField("Cache operations that failed.")]
    avg_latency_ms: Annotated[
        float,
        DurationField("Mean cache lookup time.", name="lookup_duration_mean_seconds", mode="mean"),
    ]
    p95_latency_ms: Annotated[
        float,
        DurationField(
            "95th percentile cache lookup time (interpolated in its bucket).",
            name="lookup_duration_p95_seconds",
            mode="max",
        ),
    ]
    fallback_active: Annotated[
        bool, GaugeField("1 while the in-memory fallback serves instead of Redis.", mode="max")
    ]
    fallback_since: Annotated[
        float | None,
        GaugeField(
            "When the fallback took over (unix time).",
            name="fallback_since_timestamp_seconds",
            mode="min",
        ),
    ]
    fallback_entries: Annotated[int, GaugeField("Entries held by the in-memory fallback.")]
    used_memory: Annotated[
        int | None,
        GaugeField("Memory used by the Redis server.", name="redis_memory_used_bytes", mode="max"),
    ]
    keys: Annotated[int | None, GaugeField("Keys in the cache's Redis database.", mode="max")]
    keys_estimated: Annotated[
        bool, GaugeField("1 when the key count is an estimate from a sample.", mode="max")
    ]
    connected_clients: Annotated[
        int | None,
        GaugeField(
            "Clients connected to the Redis server.", name="redis_connected_clients", mode="max"
        ),
    ]
    l1_active: Annotated[bool, GaugeField("1 when the L1 cache is on.", mode="max")] = False
    l1_hits: Annotated[int, CounterField("Lookups answered by the in-process L1 cache.")] = 0
    l1_entries: Annotated[int, GaugeField("Entries in the in-process L1 cache.")] = 0
    l1_flushes: Annotated[
        int, CounterField("Times the L1 cache was emptied because invalidations may be lost.")
    ] = 0
    stale_hits: Annotated[
        int, CounterField("Lookups answered with an expired value inside its stale window.")
    ] = 0
    background_refreshes: Annotated[
        int, CounterField("Background refreshes that ran the loader (stale or early).")
    ] = 0
    stale_if_error_serves: Annotated[
        int, CounterField("Stale values served after their refresh failed (stale_if_error).")
    ] = 0


class CacheCounters:
    """Thread-safe counters and a fixed-bucket latency histogram.

    A lookup (on every cache read) only appends its latency to a deque of hits or of misses:
    thread-safe without a lock, and a fraction of the cost of counting it there and then.
    The counters take them in when they are read, or every ``FOLD_AT`` lookups, so memory
    stays bounded."""

    FOLD_AT = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hit_times: deque[float] = deque()
        self._miss_times: deque[float] = deque()
        self._l1_hits: Callable[[], int] | None = None
        self._l1_seen = 0
        self.reset()

    def fold_l1_hits(self, count: Callable[[], int]) -> None:
        """Count the L1 hits ``count()`` reports as hits too, when the counters are read:
        an L1 hit then costs one increment in the near cache, nothing here. They go into
        the first latency bucket (an L1 hit takes about a microsecond)."""
        with self._lock:
            self._l1_hits = count
            self._l1_seen = count()

    def reset(self) -> None:
        with self._lock:
            self._hit_times.clear()
            self._miss_times.clear()
            self._hits = 0
            self._misses = 0
            self.stale_hits = 0
            self.background_refreshes = 0
            self.stale_if_error_serves = 0
            self.sets = 0
            self.deletes = 0
            self.errors = 0
            self._latency_total_ms = 0.0
            self._latency_counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
            if self._l1_hits is not None:
                self._l1_seen = self._l1_hits()

    def lookup(self, hit: bool, seconds: float) -> None:
        times = self._hit_times if hit else self._miss_times
        times.append(seconds)
        if len(times) >= self.FOLD_AT:
            self._fold()

    def _fold(self) -> None:
        """Count the lookups appended since the last fold."""
        with self._lock:
            self._hits += self._take(self._hit_times)
            self._misses += self._take(self._miss_times)
            if self._l1_hits is not None:
                l1_hits = self._l1_hits()
                self._hits += l1_hits - self._l1_seen
                self._latency_counts[0] += l1_hits - self._l1_seen
                self._l1_seen = l1_hits

    def _take(self, times: deque[float]) -> int:
        # popleft until empty: what other threads append meanwhile is taken now or next time,
        # never lost. Called with the lock held.
        counts = self._latency_counts
        taken = 0
        total_ms = 0.0
        while True:
            try:
                ms = times.popleft() * 1000.0
            except IndexError:
                break
            taken += 1
            total_ms += ms
            counts[bisect.bisect_left(LATENCY_BUCKETS_MS, ms)] += 1
        self._latency_total_ms += total_ms
        return taken

    @property
    def hits(self) -> int:
        self._fold()
        return self._hits

    @property
    def misses(self) -> int:
        self._fold()
        return self._misses

    def count(
        self,
        *,
        sets: int = 0,
        deletes: int = 0,
        errors: int = 0,
        stale_hits: int = 0,
        background_refreshes: int = 0,
        stale_if_error_serves: int = 0,
    ) -> None:
        with self._lock:
            self.sets += sets
            self.deletes += deletes
            self.errors += errors
            self.stale_hits += stale_hits
            self.background_refreshes += background_refreshes
            self.stale_if_error_serves += stale_if_error_serves

    def latency(self) -> tuple[float, float]:
        """Average and 95th percentile (interpolated in its bucket) lookup latency, in ms."""
        self._fold()
        with self._lock:
            total = sum(self._latency_counts)
            p95 = quantile(LATENCY_BUCKETS_MS, self._latency_counts, 0.95)
            if p95 is None:
                return 0.0, 0.0
            return self._latency_total_ms / total, p95
