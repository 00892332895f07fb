"""The reference server while PostgreSQL or Redis is down: clear 503s, nothing half-done,
and back to normal when the server returns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import psycopg
import pytest
from marketplace import datagen
from marketplace.app import MarketplaceConfig, create_app

from perfkit import Settings
from tests._servers import PrivateRedis, RestartablePostgres
from tests.examples.conftest import TINY_SF

pytestmark = pytest.mark.slow


def _load(url: str) -> None:
    datagen.load(url, sf=TINY_SF, seed=7, progress=False)
    # The load commits with synchronous_commit off; the tests stop the server "immediate"
    # (like a crash) moments later, which would lose it.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


@asynccontextmanager
async def _client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        MarketplaceConfig(
            database_url=database_url,
            redis_url=redis_url,
            warm_schedule=False,
            pool_min=1,
            pool_max=2,
        ),
        # A short pool timeout: a request waits this long for a connection that cannot come.
        Settings(db_pool_timeout=1.0),
    )
    async with app.market.running():  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://marketplace") as client:
            yield client


async def test_reads_answer_503_while_postgres_is_down_then_recover(
    private_postgres: RestartablePostgres, private_redis: PrivateRedis
) -> None:
    _load(private_postgres.url)
    async with _client(private_postgres.url, private_redis.url) as client:
        cached = (await client.get("/api/products/5")).json()

        private_postgres.stop()
        # What is cached is still served; what needs SQL gets a 503 that says why.
        answer = await client.get("/api/products/5")
        assert answer.status_code == 200 and answer.json() == cached
        for method, path, body in [
            ("GET", "/api/products/6", None),
            ("GET", "/api/leaderboards/categories", None),
            ("POST", "/api/orders", {"user_id": 7, "items": {"5": 1}}),
            ("PATCH", "/api/products/5", {"price_cents": 999}),
        ]:
            answer = await client.request(method, path, json=body)
            assert answer.status_code == 503, (path, answer.text)
            assert "database is unavailable" in answer.json()["error"]
            assert answer.headers["Retry-After"] == "1"

        private_postgres.start()
        # The pool hands out no connection that died with the server: the first request
        # after the restart is answered.
        answer = await client.get("/api/products/6")
        assert answer.status_code == 200, answer.text
        # The refused price update changed nothing.
        assert (await client.get("/api/products/5")).json()["price_cents"] == cached["price_cents"]


async def test_an_order_is_taken_while_redis_is_down(
    private_postgres: RestartablePostgres, private_redis: PrivateRedis
) -> None:
    _load(private_postgres.url)
    async with _client(private_postgres.url, private_redis.url) as client:
        stock = (await client.get("/api/products/5")).json()["stock"]
        private_redis.kill()
        # The cache falls back to memory; the confirmation email cannot be queued, but the
        # committed order is answered (and logged), not turned into an error.
        answer = await client.post("/api/orders", json={"user_id": 7, "items": {"5": 2}})
        assert answer.status_code == 201, answer.text
        assert (await client.get("/api/products/5")).json()["stock"] == stock - 2
        answer = await client.post("/api/jobs", json={"processor": "analytics.sales_aggregation"})
        assert answer.status_code == 503
        assert "job queues are unavailable" in answer.json()["error"]
