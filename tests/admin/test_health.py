"""health and health/detailed: each dependency's status and latency, 503 when a required
one is down — checked by killing a real Redis server."""

from __future__ import annotations

from collections.abc import Callable

import redis

from perfkit import Perfkit, Settings
from perfkit.cache import RedisService
from perfkit.jobs import JobService
from perfkit.queries import TimedPool
from tests._servers import PrivateRedis
from tests.admin.conftest import AUTH, TOKEN, Client


def statuses(client: Client) -> tuple[int, dict[str, str], str]:
    response = client.get("health/detailed", headers=AUTH)
    body = response.json()
    return (
        response.status_code,
        {dep["name"]: dep["status"] for dep in body["dependencies"]},
        body["status"],
    )


def test_jobs_redis_down_is_503(
    make_kit: Callable[..., Perfkit],
    private_redis: PrivateRedis,
    in_process: Callable[[Perfkit], Client],
) -> None:
    client = in_process(make_kit())
    assert statuses(client) == (200, {"redis": "up", "database": "up", "jobs": "up"}, "ok")
    private_redis.kill()
    code, deps, status = statuses(client)
    assert (code, deps, status) == (
        503,
        {"redis": "down", "database": "up", "jobs": "down"},
        "down",
    )
    health = client.get("health", headers=AUTH)
    assert (health.status_code, health.json()) == (503, {"status": "down"})
    detailed = client.get("health/detailed", headers=AUTH).json()
    jobs = next(dep for dep in detailed["dependencies"] if dep["name"] == "jobs")
    assert jobs["error"] == "ConnectionError" and jobs["latency_ms"] is None
    # The routes that need Redis answer 503, not 500; the rest keep working.
    unavailable = client.get("jobs", headers=AUTH)
    assert unavailable.status_code == 503
    assert unavailable.json()["detail"] == "jobs: ConnectionError"
    assert client.get("dashboard", headers=AUTH).json()["jobs"] is None
    assert client.get("queries", headers=AUTH).status_code == 200
    private_redis.start()
    assert statuses(client)[0] == 200


def test_cache_redis_down_only_degrades(
    private_redis: PrivateRedis, database_url: str, in_process: Callable[[Perfkit], Client]
) -> None:
    settings = Settings(redis_url=private_redis.url, perfkit_admin_token=TOKEN)
    cache = RedisService(private_redis.url, namespace="admintest", settings=settings)
    with TimedPool(database_url, min_size=1, max_size=2, open=True) as pool:
        client = in_process(Perfkit(cache=cache, pool=pool, settings=settings))
        private_redis.kill()
        assert statuses(client) == (200, {"redis": "down", "database": "up"}, "degraded")
        # The cache falls back to memory: its metrics still answer.
        cache_report = client.get("cache", headers=AUTH).json()
        assert cache_report["metrics"]["fallback_active"] is True
    cache.close()


def test_required_is_configurable(
    private_redis: PrivateRedis, in_process: Callable[[Perfkit], Client]
) -> None:
    connection = redis.Redis.from_url(private_redis.url)
    kit = Perfkit(
        jobs=JobService(connection), settings=Settings(perfkit_admin_token=TOKEN), required=()
    )
    client = in_process(kit)
    private_redis.kill()
    assert statuses(client) == (200, {"jobs": "down"}, "degraded")
    connection.close()


def test_database_down_is_503(
    make_kit: Callable[..., Perfkit], in_process: Callable[[Perfkit], Client]
) -> None:
    pool = TimedPool(
        "postgresql://postgres@127.0.0.1:1/none", min_size=0, max_size=1, open=True, timeout=0.5
    )
    kit = make_kit(pool=pool, health_timeout=0.5)
    code, deps, status = statuses(in_process(kit))
    assert (code, deps["database"], status) == (503, "down", "down")
    pool.close()
