"""Timed pools on the test's own PostgreSQL schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

import perfkit._compat.psycopg_pool
from perfkit.queries import AsyncTimedPool, QueryStats, TimedPool


@pytest.fixture(params=[True, False], ids=["pool-internals", "pool-public"])
def pool_internals(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Pools use psycopg_pool's internals (perfkit._compat.psycopg_pool), or only its public
    API. Test modules of the pools use it for every test (``pytestmark``)."""
    monkeypatch.setattr(perfkit._compat.psycopg_pool, "INTERNALS", request.param)
    return bool(request.param)


@pytest.fixture
def stats() -> QueryStats:
    """Statement stats with a 150 ms slow threshold."""
    return QueryStats(slow_query_ms=150)


@pytest.fixture
def pool(database_url: str, stats: QueryStats) -> Iterator[TimedPool]:
    """An open TimedPool (1 to 3 connections) recording into ``stats``."""
    with TimedPool(database_url, query_stats=stats, min_size=1, max_size=3, timeout=5) as pool:
        pool.wait(10)
        yield pool


@pytest.fixture
async def apool(database_url: str, stats: QueryStats) -> AsyncIterator[AsyncTimedPool]:
    """An open AsyncTimedPool (1 to 3 connections) recording into ``stats``."""
    async with AsyncTimedPool(
        database_url, query_stats=stats, min_size=1, max_size=3, timeout=5
    ) as pool:
        await pool.wait(10)
        yield pool
