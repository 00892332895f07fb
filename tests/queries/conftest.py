"""Timed pools on the test's own PostgreSQL schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from perfkit.queries import AsyncTimedPool, QueryStats, TimedPool


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
