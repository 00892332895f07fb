"""PerformanceMonitor with the real cache, pool and job services; collectors; findings."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest
import redis

from perfkit import MetricsError
from perfkit._stat_kinds import CounterField, DurationField, GaugeField
from perfkit.cache import AsyncRedisService, RedisService
from perfkit.jobs import JobService
from perfkit.metrics import (
    AsyncPerformanceMonitor,
    MetricsRegistry,
    PerformanceMonitor,
    StatsCollector,
    Thresholds,
)
from perfkit.queries import QueryStats, TimedPool
from perfkit.settings import Settings
from tests.metrics.test_registry import families


class Inner(msgspec.Struct):
    depth: Annotated[int, GaugeField("Depth.")]
    label: str


class Stats(msgspec.Struct):
    served: Annotated[int, CounterField("Requests served.")]
    ratio: Annotated[float, GaugeField("A ratio.")]
    up: Annotated[bool, GaugeField("1 when up.")]
    missing: Annotated[int | None, GaugeField("Absent.")]
    wait_ms: Annotated[float, DurationField("Mean wait.", name="wait_seconds")]
    spent_ms: Annotated[int, CounterField("Time spent.", name="spent_seconds", scale=0.001)]
    undeclared: int
    name: str
    inner: Inner


class Queue(msgspec.Struct):
    queue: str
    waiting: Annotated[int, GaugeField("Waiting.")]
    failed: Annotated[int, GaugeField("Failed.")]


def test_declared_fields_become_counters_and_gauges_in_base_units() -> None:
    registry = MetricsRegistry()
    stats = Stats(3, 0.5, True, None, 250.0, 1500, 9, "x", Inner(4, "y"))
    collector = StatsCollector("app", lambda: stats)
    registry.register_collector(collector)
    assert "app_served" not in registry.exposition()  # nothing before the first refresh
    collector.refresh()
    text = registry.exposition()
    parsed = families(text)
    assert parsed["app_served"][("app_served_total", ())] == 3
    assert "# TYPE app_served_total counter" in text
    assert "# HELP app_served_total Requests served." in text
    assert parsed["app_ratio"][("app_ratio", ())] == 0.5
    assert "# TYPE app_ratio gauge" in text
    assert parsed["app_up"][("app_up", ())] == 1
    assert parsed["app_wait_seconds"][("app_wait_seconds", ())] == 0.25
    assert parsed["app_spent_seconds"][("app_spent_seconds_total", ())] == 1.5
    assert parsed["app_inner_depth"][("app_inner_depth", ())] == 4
    assert "app_missing" not in parsed and "app_name" not in parsed
    assert "app_undeclared" not in parsed


class Queues(msgspec.Struct):
    """A part's one Struct holding one Struct per queue (as JobStats does)."""

    queues: list[Queue]
    paused: Annotated[bool, GaugeField("1 while paused.")]


QUEUES = [Queue("email", 2, 1), Queue("low", 5, 0)]


@pytest.mark.parametrize(
    "value",
    [QUEUES, {"email": QUEUES[0], "low": QUEUES[1]}, Queues(queues=QUEUES, paused=True)],
    ids=["list", "mapping", "struct-field"],
)
def test_one_struct_per_queue_is_labelled(value: object) -> None:
    registry = MetricsRegistry()
    collector = StatsCollector("jobs", lambda: value)
    registry.register_collector(collector)
    collector.refresh()
    parsed = families(registry.exposition())
    assert parsed["jobs_waiting"] == {
        ("jobs_waiting", (("queue", "email"),)): 2,
        ("jobs_waiting", (("queue", "low"),)): 5,
    }
    if isinstance(value, Queues):  # the holder's own fields stay unlabelled
        assert parsed["jobs_paused"] == {("jobs_paused", ()): 1}


async def test_an_async_source_is_refreshed_by_the_async_monitor() -> None:
    class AsyncJobs:
        async def stats(self) -> Queue:
            return Queue("q", 1, 0)

    monitor = PerformanceMonitor(jobs=AsyncJobs())
    collector = monitor.jobs_collector
    assert collector is not None
    with pytest.raises(MetricsError, match=r"AsyncPerformanceMonitor\.of\(monitor\)\.refresh"):
        collector.refresh()
    await AsyncPerformanceMonitor.of(monitor).refresh()
    assert collector.latest == Queue("q", 1, 0)


def test_monitor_reads_real_cache_pool_and_jobs(
    redis_url: str, namespace: str, database_url: str, redis_client: redis.Redis
) -> None:
    settings = Settings(redis_url=redis_url)
    cache = RedisService(redis_url, namespace=namespace, settings=settings)
    pool = TimedPool(database_url, query_stats=QueryStats(slow_query_ms=0.0), min_size=1,
                     max_size=2, open=True)  # fmt: skip
    jobs = JobService(redis_client)
    try:
        cache.set("a", 1)
        cache.get("a")
        for key in ("b", "c", "d"):
            cache.get(key)
        with pool.connection() as conn:
            conn.execute("SELECT 1").fetchall()
            conn.execute("SELECT 2").fetchall()

        monitor = PerformanceMonitor(cache=cache, pool=pool, jobs=jobs, settings=settings,
                                     thresholds=Thresholds(avg_response_ms=1000.0))  # fmt: skip
        parsed = families(monitor.exposition())
        assert parsed["perfkit_cache_hits"][("perfkit_cache_hits_total", ())] == 1
        assert parsed["perfkit_cache_misses"][("perfkit_cache_misses_total", ())] == 3
        assert parsed["perfkit_cache_hit_ratio"][("perfkit_cache_hit_ratio", ())] == 0.25
        statements = parsed["perfkit_db_queries_statements"]
        assert statements[("perfkit_db_queries_statements_total", ())] >= 2
        assert parsed["perfkit_db_pool_max_size"][("perfkit_db_pool_max_size", ())] == 2
        assert ("perfkit_jobs_waiting", (("queue", "email"),)) in parsed["perfkit_jobs_waiting"]

        report = monitor.report()
        assert report.cache_hit_rate == 0.25
        assert report.slow_query_pct == 100.0
        assert report.queue_depth is not None
        findings = {f.metric: f for f in report.findings}
        assert findings["cache_hit_rate"].severity == "critical"  # 0.25 <= 0.8 / 2
        assert findings["cache_hit_rate"].threshold == 0.8
        assert findings["slow_query_pct"].value == 100.0
        assert "avg_response_ms" not in findings  # no requests yet

        monitor.sample_trends()
        point = monitor.trend_points()[-1]
        assert point.cache_hit_rate == 0.25 and point.slow_query_pct == 100.0
    finally:
        pool.close()
        cache.close()


async def test_async_cache_is_read_by_the_async_twins_exposition(
    redis_url: str, namespace: str
) -> None:
    cache = AsyncRedisService(
        redis_url, namespace=namespace, settings=Settings(redis_url=redis_url)
    )
    try:
        await cache.get("nothing")
        monitor = PerformanceMonitor(cache=cache)
        parsed = families(await AsyncPerformanceMonitor.of(monitor).exposition())
        assert parsed["perfkit_cache_misses"][("perfkit_cache_misses_total", ())] == 1
        # The sync path cannot await: it keeps the last value and logs, never raises.
        assert "perfkit_cache_misses_total 1.0" in monitor.exposition()
    finally:
        await cache.close()


def test_a_source_that_fails_keeps_the_exposition_alive() -> None:
    class Broken:
        def stats(self) -> object:
            raise ConnectionError("down")

    monitor = PerformanceMonitor(cache=Broken())
    assert "process_resident_memory_bytes" in monitor.exposition()
    assert monitor.report().cache_hit_rate is None


def test_monitor_reads_its_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Like every other part: PerformanceMonitor() defaults to Settings.from_env().
    monkeypatch.setenv("SLOW_REQUEST_MS", "250")
    assert PerformanceMonitor().settings.slow_request_ms == 250
