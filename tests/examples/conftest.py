"""Fixtures for the marketplace tests: a tiny loaded database per test, and the app on it.

Each test gets its own PostgreSQL schema (``database_url``) loaded at a tiny scale factor,
and a Redis server of its own (``private_redis``): the app's RQ queues are global within a
Redis DB, so they must not meet other tests' queues.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

from marketplace import datagen  # noqa: E402
from marketplace import jobs as marketplace_jobs  # noqa: E402
from marketplace.app import Marketplace, MarketplaceConfig, create_app  # noqa: E402

from tests._servers import PrivateRedis  # noqa: E402

TINY_SF = 0.001
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def market_db(database_url: str) -> str:
    """``database_url`` with the marketplace loaded at SF 0.001 (anchored at today)."""
    datagen.load(database_url, sf=TINY_SF, seed=7, progress=False)
    return database_url


class Client(httpx.AsyncClient):
    """An httpx client on the app in-process, with the app's state at ``.market``."""

    market: Marketplace


MakeClient = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def make_client(market_db: str, private_redis: PrivateRedis) -> MakeClient:
    """``async with make_client(caching=True) as client:`` the app, running, in-process."""

    @asynccontextmanager
    async def make(
        *, caching: bool = True, admin_token: str | None = None, l1: bool = False
    ) -> AsyncIterator[Client]:
        app = create_app(
            MarketplaceConfig(
                database_url=market_db,
                redis_url=private_redis.url,
                caching=caching,
                warm_schedule=False,
                bench_endpoints=True,
                admin_token=admin_token,
                l1=l1,
                pool_min=1,
                pool_max=4,
            )
        )
        market: Marketplace = app.market  # type: ignore[attr-defined]
        async with market.running():
            transport = httpx.ASGITransport(app=app)
            async with Client(transport=transport, base_url="http://marketplace") as client:
                client.market = market
                yield client

    return make


@pytest.fixture
def worker_env(
    market_db: str, private_redis: PrivateRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The environment a worker of the marketplace reads; its pool and cache closed after."""
    monkeypatch.setenv("DATABASE_URL", market_db)
    monkeypatch.setenv("REDIS_URL", private_redis.url)
    monkeypatch.setenv("JOB_EXPORT_DIR", str(tmp_path / "out"))
    yield tmp_path / "out"
    marketplace_jobs.close_resources()
