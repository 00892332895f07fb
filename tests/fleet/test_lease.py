"""Scheduled warm-ups once per interval across processes: the Redis lease (issue 18)."""

from __future__ import annotations

import itertools
import time

import redis

from perfkit.cache import CacheWarmer
from perfkit.cache.warmer import WarmLease

INTERVAL = 0.5


def _warmer(
    client: redis.Redis, namespace: str, name: str, runs: list[tuple[float, str]]
) -> CacheWarmer:
    warmer = CacheWarmer(delay=0.0, interval=INTERVAL)
    warmer.register("w", lambda: runs.append((time.monotonic(), name)))
    warmer.lease = WarmLease(client, namespace=namespace, process=lambda: name)
    return warmer


def test_two_schedules_warm_once_per_interval_between_them(
    redis_client: redis.Redis, namespace: str
) -> None:
    runs: list[tuple[float, str]] = []
    warmers = [_warmer(redis_client, namespace, name, runs) for name in ("p1", "p2", "p3")]
    started = time.monotonic()
    for warmer in warmers:
        warmer.start()
    deadline = started + 60
    while len(runs) < 6:
        assert time.monotonic() < deadline, runs
        time.sleep(0.05)
    for warmer in warmers:
        warmer.stop()
    elapsed = time.monotonic() - started
    times = sorted(at for at, _ in runs)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= INTERVAL * 0.9, gaps  # never two warm-ups within one lease
    assert len(runs) <= elapsed / INTERVAL + 1
    record = warmers[0].lease.last() if warmers[0].lease is not None else None
    assert record is not None and record.process in {"p1", "p2", "p3"}
    assert record.results[0].name == "w" and record.results[0].ok


def test_a_dead_holder_does_not_stop_the_warming(redis_client: redis.Redis, namespace: str) -> None:
    runs: list[tuple[float, str]] = []
    warmer = _warmer(redis_client, namespace, "p1", runs)
    assert warmer.lease is not None
    # A holder that died right after taking the lease: it expires after the interval.
    redis_client.set(warmer.lease.key, b"dead", px=int(INTERVAL * 1000))
    assert warmer.lease.acquire(INTERVAL) is False
    warmer.start()
    deadline = time.monotonic() + 30
    while not runs:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    warmer.stop()
    assert runs[0][1] == "p1"


def test_a_manual_warm_runs_whoever_holds_the_lease(
    redis_client: redis.Redis, namespace: str
) -> None:
    runs: list[tuple[float, str]] = []
    warmer = _warmer(redis_client, namespace, "p1", runs)
    assert warmer.lease is not None and warmer.lease.acquire(60)
    other = _warmer(redis_client, namespace, "p2", runs)
    assert [r.ok for r in other.warm()] == [True]
    assert [name for _, name in runs] == ["p2"]


def test_with_redis_away_each_process_warms_its_own_fallback() -> None:
    client = redis.Redis(port=1, socket_connect_timeout=0.2)  # nothing listens there
    lease = WarmLease(client, namespace="ns", process=lambda: "p1")
    assert lease.acquire(INTERVAL) is True
