"""Perfkit: composition, from_env, background work, async parts, misuse."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import redis

from perfkit import ConfigError, Perfkit, Settings
from perfkit.cache import AsyncCacheWarmer, AsyncRedisService, CacheWarmer
from perfkit.jobs import JobService
from perfkit.metrics import PerformanceMonitor
from perfkit.queries import AsyncTimedPool, QueryStats, TimedPool
from tests._servers import PrivateRedis
from tests.admin.conftest import AUTH, TOKEN, asgi_client


def test_from_env_builds_and_owns_the_parts(private_redis: PrivateRedis, database_url: str) -> None:
    environ = {
        "REDIS_URL": private_redis.url,
        "DATABASE_URL": database_url,
        "PERFKIT_ADMIN_TOKEN": TOKEN,
        "DB_POOL_MIN": "1",
        "PERFORMANCE_LOG_INTERVAL": "1",
        "CACHE_WARMUP_DELAY": "0",
    }
    warmer = CacheWarmer(delay=0, interval=60, settings=Settings())
    warmed: list[float] = []
    warmer.register("tick", lambda: warmed.append(time.time()) or 1)
    kit = Perfkit.from_env(environ, warmer=warmer)
    assert isinstance(kit.pool, TimedPool) and kit.cache is not None and kit.jobs is not None
    assert (
        repr(kit) == "Perfkit(parts=['cache', 'pool', 'jobs', 'warmer'], "
        "queues=['email', 'notifications', 'analytics'])"
    )
    with kit:  # start(), and stop() on the way out
        with kit.pool.connection() as conn:  # opened by start()
            conn.execute("SELECT 1")
        deadline = time.monotonic() + 5
        while not warmed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert warmed, "the warming schedule did not run"
        assert kit.performance_log is not None and kit.performance_log.running
        summary = asgi_client(kit.asgi_admin()).get("summary", headers=AUTH)
        assert summary.status_code == 200
    assert kit.pool.closed
    assert kit.performance_log is not None and not kit.performance_log.running


def test_the_request_middleware_feeds_the_admin() -> None:
    kit = Perfkit(settings=Settings(perfkit_admin_token=TOKEN), performance_log=False)

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"oops"})

    client = asgi_client(kit.asgi(app))
    for _ in range(3):
        client.get("/orders/1")
    summary = asgi_client(kit.asgi_admin()).get("summary", headers=AUTH).json()
    assert (summary["requests"]["requests"], summary["requests"]["errors"]) == (3, 3)


def test_wsgi_admin_refuses_async_parts(redis_url: str) -> None:
    cache = AsyncRedisService(redis_url, namespace="admintest", settings=Settings())
    kit = Perfkit(cache=cache, settings=Settings(perfkit_admin_token=TOKEN))
    with pytest.raises(ConfigError, match=r"\['cache'.*use asgi_admin"):
        kit.wsgi_admin()


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="queues"):
        Perfkit(settings=Settings(), queues=())
    with pytest.raises(ConfigError, match="required: unknown"):
        Perfkit(settings=Settings(), required=("cache",))
    with pytest.raises(ConfigError, match="max_body"):
        Perfkit(settings=Settings(), max_body=0)


def test_queues_other_than_the_job_service_s_are_refused(redis_client: redis.Redis) -> None:
    jobs = JobService(redis_client, queues=["email"])
    with pytest.raises(ConfigError, match=r"\['analytics'\] differ .* JobService\(queues="):
        Perfkit(jobs=jobs, settings=Settings(), queues=["analytics"], fleet=False)
    assert jobs.queues == ("email",)
    kit = Perfkit(jobs=jobs, settings=Settings(), queues=["email"], fleet=False)
    assert kit.queues == ("email",)


def test_a_monitor_of_your_own() -> None:
    monitor = PerformanceMonitor(settings=Settings())
    kit = Perfkit(metrics=monitor, settings=Settings(perfkit_admin_token=TOKEN))
    assert kit.monitor is monitor


def test_async_parts_under_asgi(redis_url: str, namespace: str, database_url: str) -> None:
    async def scenario() -> None:
        settings = Settings(perfkit_admin_token=TOKEN)
        cache = AsyncRedisService(redis_url, namespace=namespace, settings=settings)
        pool = AsyncTimedPool(
            database_url, min_size=1, max_size=2, query_stats=QueryStats(slow_query_ms=1000)
        )
        await pool.open(wait=True)
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
        await cache.set("k", 1)
        await cache.get("k")
        await cache.get("missing")
        warmer = CacheWarmer(settings=settings)

        async def warm() -> int:
            await cache.set("warm", 1)
            return 1

        warmer.register("async", warm)
        kit = Perfkit(cache=cache, pool=pool, warmer=warmer, settings=settings)
        transport = httpx.ASGITransport(app=kit.asgi_admin())
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
            cache_report = (await client.get("/cache", headers=AUTH)).json()
            assert cache_report["metrics"]["hit_rate"] == 0.5
            summary = (await client.get("/summary", headers=AUTH)).json()
            assert summary["cache_hit_rate"] == 0.5
            health = (await client.get("/health/detailed", headers=AUTH)).json()
            assert {d["name"]: d["status"] for d in health["dependencies"]} == {
                "redis": "up",
                "database": "up",
            }
            queries = (await client.get("/queries", headers=AUTH)).json()
            assert queries["queries"]["count"] == 1  # the health check's SELECT is not counted
            warm_report = (await client.post("/cache/warm", headers=AUTH)).json()
            assert warm_report["ok"] is True
            assert await cache.get("warm") == 1
        await pool.close()
        await cache.close()

    asyncio.run(scenario())


def test_async_with_kit_runs_the_warming_schedule_in_the_loop(
    redis_url: str, namespace: str
) -> None:
    async def scenario() -> None:
        settings = Settings()
        cache = AsyncRedisService(redis_url, namespace=namespace, settings=settings)
        warmer = CacheWarmer(delay=0, interval=60, settings=settings)
        loops: list[asyncio.AbstractEventLoop] = []

        async def tick() -> int:
            loops.append(asyncio.get_running_loop())
            return 1

        warmer.register("tick", tick)
        kit = Perfkit(cache=cache, warmer=warmer, settings=settings, performance_log=False)
        schedule = AsyncCacheWarmer.of(warmer)
        async with kit as entered:
            assert entered is kit
            deadline = time.monotonic() + 30
            while not loops:
                assert time.monotonic() < deadline, "the schedule never ran"
                await asyncio.sleep(0.01)
            assert loops == [asyncio.get_running_loop()]  # a task of this loop
            assert schedule._task is not None and not schedule._task.done()
        assert schedule._task is None  # stopped on the way out
        await cache.close()

    asyncio.run(scenario())
