"""The getting-started examples (examples/integrations), as the docs show them: FastAPI,
Flask and Django apps on real PostgreSQL and Redis, each creating the table it reads."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import psycopg
import pytest

from perfkit.embedded import free_port
from tests._servers import PrivateRedis

INTEGRATIONS = Path(__file__).resolve().parents[2] / "examples" / "integrations"
TOKEN = "integration-token-0123456789"


@pytest.fixture
def environment(
    database_url: str, private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", private_redis.url)
    monkeypatch.setenv("PERFKIT_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("DB_POOL_MIN", "1")
    monkeypatch.syspath_prepend(str(INTEGRATIONS))


def _fresh(name: str) -> ModuleType:
    sys.modules.pop(name, None)
    return importlib.import_module(name)


@pytest.fixture
def fastapi_module(environment: None) -> Iterator[ModuleType]:
    module = _fresh("fastapi_app")
    yield module
    sys.modules.pop("fastapi_app", None)


@pytest.fixture
def flask_module(environment: None) -> Iterator[ModuleType]:
    module = _fresh("flask_app")
    yield module
    module.kit.stop()
    module.pool.close()
    module.cache.close()
    sys.modules.pop("flask_app", None)


AUTH = {"Authorization": f"Bearer {TOKEN}"}
# (method, path, headers, status, what the JSON body must contain)
STEPS: list[tuple[str, str, dict[str, str], int, dict[str, Any] | None]] = [
    ("GET", "/products/1", {}, 200, {"id": 1, "name": "lamp", "price_cents": 1900}),
    ("GET", "/products/1", {}, 200, {"price_cents": 1900}),  # a hit
    ("GET", "/products/3", {}, 404, None),
    ("PUT", "/products/1/price?price_cents=1750", {}, 200, None),
    ("GET", "/products/1", {}, 200, {"price_cents": 1750}),  # never stale
]


def _check(step: tuple[Any, ...], response: httpx.Response) -> None:
    method, path, _, status, body = step
    assert response.status_code == status, (method, path, response.text)
    if body is not None:
        found = response.json()
        assert {key: found.get(key) for key in body} == body, (path, found)


def _check_admin(cache: httpx.Response, locked: httpx.Response, spec: httpx.Response) -> None:
    assert cache.status_code == 200, cache.text
    assert cache.json()["metrics"]["hits"] == 1  # the second GET of product 1
    assert locked.status_code in (401, 403)
    assert spec.status_code == 200
    assert spec.headers.get("content-encoding") in ("gzip", "br")  # compression middleware


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan startup and shutdown around the block."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)
    )
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task


async def test_fastapi_example(fastapi_module: ModuleType) -> None:
    app = fastapi_module.app
    async with (
        lifespan(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fastapi"
        ) as client,
    ):
        for step in STEPS:
            _check(step, await client.request(step[0], step[1], headers=step[2]))
        _check_admin(
            await client.get("/api/admin/performance/cache", headers=AUTH),
            await client.get("/api/admin/performance/cache"),
            await client.get("/api/admin/performance/openapi.json", headers=AUTH),
        )
    # The admin API is not measured (DEFAULT_EXCLUDE): monitoring does not count itself.
    assert fastapi_module.kit.monitor.requests.summary().requests == len(STEPS)


def test_flask_example(flask_module: ModuleType) -> None:
    transport = httpx.WSGITransport(app=flask_module.app)
    with httpx.Client(transport=transport, base_url="http://flask") as client:
        for step in STEPS:
            _check(step, client.request(step[0], step[1], headers=step[2]))
        _check_admin(
            client.get("/api/admin/performance/cache", headers=AUTH),
            client.get("/api/admin/performance/cache"),
            client.get("/api/admin/performance/openapi.json", headers=AUTH),
        )
    assert flask_module.kit.monitor.requests.summary().requests == len(STEPS)


@pytest.mark.slow
def test_django_example(environment: None, database_url: str) -> None:
    # Django is configured once per process: the example runs as its docstring says, under
    # Django's own development server, in a process of its own.
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "django_app.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=INTEGRATIONS,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/api/admin/performance/health")
                    break
                except httpx.TransportError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            for step in STEPS:
                _check(step, client.request(step[0], step[1], headers=step[2]))
            report = client.get("/api/admin/performance/cache", headers=AUTH)
            assert report.status_code == 200, report.text
            assert report.json()["metrics"]["hits"] == 1  # the second GET of product 1
            assert client.get("/api/admin/performance/cache").status_code == 401
            # Django's own SQL, timed by the perfkit app: the kit's database.
            queries = client.get("/api/admin/performance/queries", headers=AUTH)
            assert queries.status_code == 200, queries.text
            statements = {s["fingerprint"]: s for s in queries.json()["queries"]["by_fingerprint"]}
            select = "SELECT id, name, price_cents FROM products WHERE id = ?"
            assert statements[select]["count"] == 3  # products 1 (a miss), 3, 1 after the PUT
            summary = client.get("/api/admin/performance/summary", headers=AUTH).json()
            assert summary["requests"]["requests"] == len(STEPS)  # runserver: kit.wsgi too
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "Traceback" not in output, output
    with psycopg.connect(database_url) as conn:  # the example created and seeded its table
        assert conn.execute("SELECT price_cents FROM products WHERE id = 1").fetchone() == (1750,)
