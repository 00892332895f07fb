"""CacheCounters: exact counts from many threads, bounded memory, the latency histogram."""

from __future__ import annotations

import threading

import pytest

from perfkit.cache._stats import CacheCounters


def test_lookups_from_many_threads_are_all_counted() -> None:
    stats = CacheCounters()
    start = threading.Barrier(8)

    def work(hit: bool) -> None:
        start.wait()
        for _ in range(5_000):
            stats.lookup(hit, 0.0002)
            # Bounded: each thread appends at most one lookup past FOLD_AT before it folds.
            assert len(stats._hit_times) <= CacheCounters.FOLD_AT + len(threads)
            assert len(stats._miss_times) <= CacheCounters.FOLD_AT + len(threads)

    threads = [threading.Thread(target=work, args=(n % 4 != 0,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (stats.hits, stats.misses) == (30_000, 10_000)
    average, p95 = stats.latency()
    # All 0.2 ms: the (0.1, 0.25] bucket; the p95 is interpolated inside it.
    assert round(average, 6) == 0.2 and 0.1 < p95 <= 0.25


def test_latency_percentile_and_reset() -> None:
    stats = CacheCounters()
    for _ in range(90):
        stats.lookup(True, 0.0004)  # 0.4 ms: the 0.5 ms bucket
    for _ in range(10):
        stats.lookup(False, 0.02)  # 20 ms: the 25 ms bucket
    assert (stats.hits, stats.misses) == (90, 10)
    average, p95 = stats.latency()
    assert round(average, 6) == round((90 * 0.4 + 10 * 20) / 100, 6)
    # The 95th of 100 lookups is the 5th of the ten in the (10, 25] ms bucket: its middle.
    assert p95 == pytest.approx(17.5)
    stats.reset()
    assert (stats.hits, stats.misses, stats.latency()) == (0, 0, (0.0, 0.0))
