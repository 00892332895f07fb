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
    # All 0.2 ms: one bucket 9.05 % wide; the p95 is interpolated inside it.
    assert round(average, 6) == 0.2 and p95 == pytest.approx(0.2, rel=0.0905)


def test_latency_percentile_and_reset() -> None:
    stats = CacheCounters()
    for _ in range(90):
        stats.lookup(True, 0.0004)  # 0.4 ms
    for _ in range(10):
        stats.lookup(False, 0.02)  # 20 ms
    assert (stats.hits, stats.misses) == (90, 10)
    average, p95 = stats.latency()
    assert round(average, 6) == round((90 * 0.4 + 10 * 20) / 100, 6)
    # The 95th of 100 lookups is one of the ten at 20 ms: read within a bucket's 9.05 %.
    assert p95 == pytest.approx(20.0, rel=0.0905)
    stats.reset()
    assert (stats.hits, stats.misses, stats.latency()) == (0, 0, (0.0, 0.0))
