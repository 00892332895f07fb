"""Fixtures for the admin API tests: a Perfkit over real Redis, PostgreSQL and RQ, real
traffic through it, and clients for both adapters, in-process and through real servers.

RQ's keys are global within a Redis DB, so the kit's Redis is a private server per test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from perfkit import Perfkit, Settings
from perfkit.cache import CacheWarmer, RedisService
from perfkit.jobs import JobService, make_worker
from perfkit.queries import QueryStats, TimedPool
from tests._servers import PrivateRedis
from tests.admin import _processors  # noqa: F401  (registers the test processors)
from tests.metrics.conftest import UvicornThread, WSGIThread

TOKEN = "admin-token-" + uuid.uuid4().hex
AUTH = {"authorization": f"Bearer {TOKEN}"}
QUEUES = ("reports", "mail")
# A parameter value that must never appear in any response or log.
SECRET_PARAMETER = "parameter-value-" + uuid.uuid4().hex[:8]
FAILED_JOBS = 3
COMPLETED_JOBS = 2


class Client:
    """One way to reach an admin app: ``get``/``post``/``request`` return httpx Responses."""

    def __init__(self, kind: str, send: Callable[..., httpx.Response]) -> None:
        self.kind = kind
        self._send = send

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._send(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._send("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._send("POST", path, **kwargs)


def asgi_client(app: Any, base: str = "http://admin") -> Client:
    """In-process ASGI (httpx.ASGITransport), one event loop per request."""

    def send(method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=base) as client:
                return await client.request(method, path.lstrip("/"), **kwargs)

        return asyncio.run(go())

    return Client("asgi", send)


def wsgi_client(app: Any, base: str = "http://admin") -> Client:
    """In-process WSGI (httpx.WSGITransport)."""
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url=base)
    return Client("wsgi", lambda method, path, **kw: client.request(method, path.lstrip("/"), **kw))


def http_client(url: str, kind: str) -> Client:
    """Over real HTTP."""
    client = httpx.Client(base_url=url + "/", timeout=10)
    return Client(kind, lambda method, path, **kw: client.request(method, path.lstrip("/"), **kw))


@pytest.fixture
def kit_redis(private_redis: PrivateRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(private_redis.url)
    yield client
    client.close()


@pytest.fixture
def make_kit(
    private_redis: PrivateRedis, kit_redis: redis.Redis, database_url: str
) -> Iterator[Callable[..., Perfkit]]:
    """Build kits over the private Redis and the test's schema; closed afterwards."""
    closing: list[Any] = []

    def make(**overrides: Any) -> Perfkit:
        settings = Settings(
            redis_url=private_redis.url,
            perfkit_admin_token=TOKEN,
            slow_query_ms=50.0,
            cache_warmup_delay=3600,
        )
        parts: dict[str, Any] = {"settings": settings, "queues": QUEUES}
        if "cache" not in overrides:
            parts["cache"] = RedisService(
                private_redis.url, namespace="admintest", settings=settings
            )
            closing.append(parts["cache"])
        if "pool" not in overrides:
            pool = TimedPool(
                database_url,
                min_size=1,
                max_size=4,
                open=True,
                query_stats=QueryStats(slow_query_ms=50.0),
            )
            closing.append(pool)
            parts["pool"] = pool
        if "jobs" not in overrides:
            parts["jobs"] = JobService(kit_redis, queues=QUEUES, retry_attempts=0)
        if "warmer" not in overrides:
            warmer = CacheWarmer(settings=settings)
            cache = parts.get("cache") or overrides.get("cache")
            warmer.register("products", lambda: (cache.set("products", [1, 2, 3]), 1)[1])
            warmer.register("broken", _broken_warmer)
            parts["warmer"] = warmer
        return Perfkit(**(parts | overrides))

    yield make
    for part in closing:
        part.close()


def _broken_warmer() -> int:
    raise RuntimeError("warmer failed")


def make_traffic(kit: Perfkit) -> None:
    """Real traffic: statements (one slow, one failing), cache lookups, jobs run by a worker."""
    assert kit.pool is not None and kit.cache is not None and kit.jobs is not None
    with kit.pool.connection() as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        for i in range(5):
            conn.execute("INSERT INTO items VALUES (%s, %s)", (i, SECRET_PARAMETER))
        conn.execute("SELECT name FROM items WHERE name = %s", (SECRET_PARAMETER,)).fetchall()
        conn.execute("SELECT pg_sleep(0.06)")
        conn.commit()
    with kit.pool.connection() as conn:
        try:
            conn.execute("SELECT * FROM missing_table WHERE a = %s", (SECRET_PARAMETER,))
        except Exception:
            conn.rollback()
    kit.cache.set("hot", {"v": 1})
    for _ in range(3):
        kit.cache.get("hot")
    kit.cache.get("cold")
    for i in range(FAILED_JOBS):
        kit.jobs.enqueue("admintest.broken", {"name": f"bad-{i}"})
    for i in range(COMPLETED_JOBS):
        kit.jobs.enqueue("admintest.report", {"name": f"ok-{i}"})
    worker = make_worker(
        kit.jobs.connection, list(QUEUES), heartbeat_interval=1, maintenance_interval=1
    )
    worker.work(burst=True, logging_level="WARNING")


@pytest.fixture
def kit(make_kit: Callable[..., Perfkit]) -> Perfkit:
    """A full kit after real traffic."""
    built = make_kit()
    make_traffic(built)
    return built


@pytest.fixture(params=["asgi", "wsgi", "uvicorn", "wsgiref"])
def client(request: pytest.FixtureRequest, kit: Perfkit) -> Iterator[Client]:
    """The kit's admin API on each adapter, in-process and through a real server."""
    kind = request.param
    if kind == "asgi":
        yield asgi_client(kit.asgi_admin())
    elif kind == "wsgi":
        yield wsgi_client(kit.wsgi_admin())
    elif kind == "uvicorn":
        server = UvicornThread(kit.asgi_admin())
        yield http_client(server.url, kind)
        server.stop()
    else:
        wsgi_server = WSGIThread(kit.wsgi_admin())
        yield http_client(wsgi_server.url, kind)
        wsgi_server.stop()


@pytest.fixture(params=["asgi", "wsgi"])
def in_process(request: pytest.FixtureRequest) -> Callable[[Perfkit], Client]:
    """Build an in-process client of either adapter for a kit."""
    if request.param == "asgi":
        return lambda kit: asgi_client(kit.asgi_admin())
    return lambda kit: wsgi_client(kit.wsgi_admin())
