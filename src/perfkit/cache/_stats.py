"""Counters of a cache service, and the ``CacheStats`` struct that reports them."""

from __future__ import annotations

import bisect
import threading
import typing
from collections import deque
from collections.abc import Callable
from typing import Annotated

import msgspec

from perfkit._histogram import DEFAULT_BOUNDS, quantile
from perfkit._stat_kinds import CounterField, DurationField, GaugeField

# Upper bounds (seconds) of the latency buckets: perfkit's layout (50 µs to ~56 min, 8 per
# doubling), fixed, so memory never grows and the p95 is within 9.05 %.
LATENCY_BOUNDS = DEFAULT_BOUNDS


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
    touches: Annotated[int, CounterField("Keys whose expiry touch() reset (that existed).")] = 0


# The counters filled from elsewhere than ``CacheCounters.count``: lookups (timed, folded in
# when read) and the near cache's own. Every other ``CounterField`` of ``CacheStats`` is
# counted by ``count(name=amount)``: a new counter is its field above, nothing more.
_NOT_COUNTED = frozenset({"hits", "misses", "l1_hits", "l1_flushes"})
COUNTED: tuple[str, ...] = tuple(
    name
    for name, hint in typing.get_type_hints(CacheStats, include_extras=True).items()
    if name not in _NOT_COUNTED
    and any(isinstance(marker, CounterField) for marker in getattr(hint, "__metadata__", ()))
)


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
            self._counts = dict.fromkeys(COUNTED, 0)
            self._latency_total = 0.0
            self._latency_counts = [0] * (len(LATENCY_BOUNDS) + 1)
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
        total = 0.0
        while True:
            try:
                seconds = times.popleft()
            except IndexError:
                break
            taken += 1
            total += seconds
            counts[bisect.bisect_left(LATENCY_BOUNDS, seconds)] += 1
        self._latency_total += total
        return taken

    @property
    def hits(self) -> int:
        self._fold()
        return self._hits

    @property
    def misses(self) -> int:
        self._fold()
        return self._misses

    def count(self, **amounts: int) -> None:
        """Add to the counters named (``count(sets=2, errors=1)``): any of ``COUNTED``."""
        with self._lock:
            counts = self._counts
            for name, amount in amounts.items():
                if name not in counts:
                    raise KeyError(f"{name!r} is not a counter of CacheStats ({COUNTED})")
                counts[name] += amount

    def counted(self) -> dict[str, int]:
        """The ``COUNTED`` counters' values, by field name."""
        with self._lock:
            return dict(self._counts)

    def latency(self) -> tuple[float, float]:
        """Average and 95th percentile (interpolated in its bucket) lookup latency, in ms."""
        self._fold()
        with self._lock:
            total = sum(self._latency_counts)
            p95 = quantile(LATENCY_BOUNDS, self._latency_counts, 0.95)
            if p95 is None:
                return 0.0, 0.0
            return self._latency_total / total * 1000, p95 * 1000
