"""The reference server's /healthz follows PostgreSQL: 503 within one check interval of
it going away, 200 again by itself once it is back; and each kind of database error
answers 503 with Retry-After and says which bound ran out."""

from __future__ import annotations

import asyncio
import time

import httpx
import msgspec
import psycopg
import pytest
from marketplace.app import RETRY_AFTER, MarketplaceConfig, _database_error, create_app
from psycopg import errors
from psycopg_pool import PoolTimeout, TooManyRequests

from perfkit import Settings
from tests._servers import PrivateRedis, RestartablePostgres

pytestmark = pytest.mark.slow

INTERVAL = 0.5


async def _until(client: httpx.AsyncClient, status: int, deadline: float = 30.0) -> float:
    """Seconds until /healthz answers ``status``."""
    start = time.monotonic()
    while (await client.get("/healthz")).status_code != status:
        assert time.monotonic() - start < deadline, f"/healthz never answered {status}"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def test_health_follows_the_database_and_recovers_by_itself(
    private_postgres: RestartablePostgres, private_redis: PrivateRedis
) -> None:
    app = create_app(
        MarketplaceConfig(
            database_url=private_postgres.url,
            redis_url=private_redis.url,
            warm_schedule=False,
            pool_min=1,
            pool_max=2,
            health_interval=INTERVAL,
        ),
        Settings(db_pool_timeout=1.0),
    )
    async with app.market.running():  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://marketplace") as client:
            answer = await client.get("/healthz")
            assert answer.status_code == 200 and answer.json()["database"] == "up"

            private_postgres.stop()
            # one interval for the cached answer to age, then a check bounded by it
            assert await _until(client, 503) <= 2 * INTERVAL + 1.0
            answer = await client.get("/healthz")
            assert answer.json()["database"] == "unavailable"
            assert answer.headers["Retry-After"] == "1"

            private_postgres.start()
            assert await _until(client, 200) <= 5.0


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (TooManyRequests("the pool has already 4 requests waiting"), "too many requests"),
        (PoolTimeout("couldn't get a connection after 1.00 sec"), "no connection was free"),
        (errors.QueryCanceled("canceling statement due to statement timeout"), "statement"),
        (psycopg.OperationalError("connection refused"), "cannot be reached"),
    ],
)
def test_database_errors_answer_503_with_retry_after_and_the_reason(
    error: psycopg.OperationalError, reason: str
) -> None:
    answer = _database_error(error)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(RETRY_AFTER)
    message = msgspec.json.decode(answer.body)["error"]
    assert "the database is unavailable" in message and reason in message
