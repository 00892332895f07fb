"""The names the one stats protocol replaced (#14) still answer, and warn, for one release.

Each old name is called next to its new one on real parts: it raises a DeprecationWarning
naming the replacement and answers what the new name answers. Delete this module with the
aliases (see CHANGELOG.md).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import redis
import sqlalchemy as sa

import perfkit.cache
import perfkit.metrics
from perfkit import Perfkit
from perfkit.cache import AsyncRedisService, CacheStats, RedisService
from perfkit.contrib.sqlalchemy import instrument
from perfkit.jobs import JobService, JobStats, QueueStats
from perfkit.metrics import PerformanceMonitor, StatsSource
from perfkit.queries import AsyncTimedPool, QueryStats, TimedPool
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


def test_cache_metrics_and_reset_metrics(cache: RedisService) -> None:
    cache.set("k", 1)
    cache.get("k")
    cache.get("missing")
    with pytest.warns(DeprecationWarning, match=r"RedisService\.metrics\(\) .* use stats\(\)"):
        old = cache.metrics()
    new = cache.stats()
    assert type(old) is type(new) is CacheStats
    assert (old.hits, old.misses, old.sets) == (new.hits, new.misses, new.sets) == (1, 1, 1)
    with pytest.warns(DeprecationWarning, match=r"reset_metrics\(\) .* use reset_stats\(\)"):
        cache.reset_metrics()
    assert cache.stats().hits == 0


async def test_async_cache_metrics_and_reset_metrics(redis_url: str, namespace: str) -> None:
    cache = AsyncRedisService(
        redis_url, namespace=namespace, settings=Settings(redis_url=redis_url)
    )
    try:
        await cache.get("missing")
        with pytest.warns(DeprecationWarning, match=r"AsyncRedisService\.metrics\(\)"):
            old = await cache.metrics()
        assert old.misses == (await cache.stats()).misses == 1
        with pytest.warns(DeprecationWarning, match=r"AsyncRedisService\.reset_metrics\(\)"):
            cache.reset_metrics()
        assert (await cache.stats()).misses == 0
    finally:
        await cache.close()


def test_cache_metrics_struct_name() -> None:
    with pytest.warns(DeprecationWarning, match=r"CacheMetrics .* use perfkit\.cache\.CacheStats"):
        assert perfkit.cache.CacheMetrics is CacheStats


def test_pool_get_stats_and_the_stats_keyword(database_url: str, pool: TimedPool) -> None:
    with pool.connection() as conn:
        conn.execute("SELECT 1")
    with pytest.warns(DeprecationWarning, match=r"TimedPool\.get_stats\(\) .* use stats\(\)"):
        old = pool.get_stats(top=0)
    assert type(old) is type(pool.stats(top=0))
    assert old.queries.count == pool.stats(top=0).queries.count == 1
    shared = QueryStats()
    with pytest.warns(DeprecationWarning, match=r"TimedPool\(stats=\.\.\.\) .* query_stats="):
        other = TimedPool(database_url, stats=shared, min_size=1)
    assert other.query_stats is shared


async def test_async_pool_get_stats(database_url: str) -> None:
    async with AsyncTimedPool(database_url, min_size=1, max_size=1) as pool:
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
        with pytest.warns(DeprecationWarning, match=r"AsyncTimedPool\.get_stats\(\)"):
            old = pool.get_stats(top=0)
        assert old.queries.count == pool.stats(top=0).queries.count == 1


def test_query_stats_get_stats() -> None:
    stats = QueryStats()
    stats.record("SELECT 1", 0.001)
    with pytest.warns(DeprecationWarning, match=r"QueryStats\.get_stats\(\) .* use stats\(\)"):
        old = stats.get_stats()
    new = stats.stats()
    assert (old.count, old.total_ms, old.by_fingerprint) == (
        new.count,
        new.total_ms,
        new.by_fingerprint,
    )


def test_sqlalchemy_get_stats_and_the_stats_keyword(database_url: str) -> None:
    engine = sa.create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(database_url)
    )
    try:
        shared = QueryStats()
        with pytest.warns(DeprecationWarning, match=r"instrument\(stats=\.\.\.\) .* query_stats="):
            timed = instrument(engine, stats=shared)
        assert timed.query_stats is shared
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        with pytest.warns(DeprecationWarning, match=r"EngineInstrumentation\.get_stats\(\)"):
            old = timed.get_stats()
        assert old.queries.count == timed.stats().queries.count == 1
        timed.remove()
    finally:
        engine.dispose()


def test_job_stats_of_queues_answer_the_old_list(redis_client: redis.Redis) -> None:
    service = JobService(redis_client, queues=["email", "testq"])
    with pytest.warns(DeprecationWarning, match=r"JobService\.stats\(queues\) -> list"):
        old = service.stats(["email", "testq"])
    new = service.stats()
    assert isinstance(new, JobStats) and isinstance(old, list)
    assert all(isinstance(queue, QueueStats) for queue in old)
    assert [q.queue for q in old] == [q.queue for q in new.queues] == ["email", "testq"]


def test_kit_queues_that_differ_from_the_job_service(redis_client: redis.Redis) -> None:
    jobs = JobService(redis_client)
    with pytest.warns(DeprecationWarning, match=r"Perfkit\(queues=\.\.\.\) .* JobService\(queues="):
        kit = Perfkit(jobs=jobs, settings=Settings(), queues=["email"], fleet=False)
    assert kit.queues == jobs.queues == ("email",)
    assert [q.queue for q in jobs.stats().queues] == ["email"]


async def test_kit_astart_and_astop(redis_client: redis.Redis) -> None:
    kit = Perfkit(jobs=JobService(redis_client), settings=Settings(), performance_log=False)
    with pytest.warns(DeprecationWarning, match=r"Perfkit\.astart\(\) .* async with kit:"):
        await kit.astart()
    assert kit.fleet._thread is not None  # the fleet publisher started
    with pytest.warns(DeprecationWarning, match=r"Perfkit\.astop\(\) .* async with kit:"):
        await kit.astop()
    assert kit.fleet._thread is None


@pytest.mark.parametrize("old", ["CacheSource", "PoolSource", "JobsSource"])
def test_the_three_source_protocols(old: str) -> None:
    with pytest.warns(
        DeprecationWarning, match=rf"perfkit\.metrics\.{old} is deprecated.*StatsSource"
    ):
        assert getattr(perfkit.metrics, old) is StatsSource


def test_monitor_reads_every_part_through_stats(cache: RedisService, pool: TimedPool) -> None:
    # Not an alias: the new protocol the aliases point to, on real parts.
    monitor = PerformanceMonitor(cache=cache, pool=pool, settings=Settings())
    monitor.refresh()
    assert monitor.cache_collector is not None and monitor.pool_collector is not None
    assert isinstance(monitor.cache_collector.latest, CacheStats)
    assert monitor.pool_collector.latest.pool.name == pool.name
