"""The monitor reads every part through the one stats protocol (``StatsSource``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from perfkit.cache import CacheStats, RedisService
from perfkit.metrics import PerformanceMonitor
from perfkit.queries import TimedPool
from perfkit.settings import Settings


@pytest.fixture
def cache(redis_url: str, namespace: str) -> Iterator[RedisService]:
    service = RedisService(redis_url, namespace=namespace, settings=Settings(redis_url=redis_url))
    yield service
    service.close()


@pytest.fixture
def pool(database_url: str) -> Iterator[TimedPool]:
    with TimedPool(database_url, min_size=1, max_size=1) as opened:
        yield opened


def test_monitor_reads_every_part_through_stats(cache: RedisService, pool: TimedPool) -> None:
    monitor = PerformanceMonitor(cache=cache, pool=pool, settings=Settings())
    monitor.refresh()
    assert monitor.cache_collector is not None and monitor.pool_collector is not None
    assert isinstance(monitor.cache_collector.latest, CacheStats)
    assert monitor.pool_collector.latest.pool.name == pool.name
