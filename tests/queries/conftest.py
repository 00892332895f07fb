"""Timed pools on the test's own PostgreSQL schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

import perfkit._compat.psycopg_pool
from perfkit.queries import AsyncTimedPool, QueryStats, TimedPool

# A value the plan tests pass as a parameter: it must never be stored or logged.
SECRET = "sekrit-7f3a9c"
BIG_ROWS = 50_000


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


@pytest.fixture
def big(database_url: str) -> str:
    """``database_url``, whose schema has ``big`` (50,000 rows, no index on ``email``)
    and a few small tables for writes; analyzed, so that the planner knows their size."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE big (id int PRIMARY KEY, email text NOT NULL, n int NOT NULL);"
            "INSERT INTO big SELECT i, 'user' || i || '@example.com', i % 7"
            f" FROM generate_series(1, {BIG_ROWS}) i;"
            "CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL);"
            "INSERT INTO counter VALUES (1, 0);"
            "CREATE TABLE log (id serial PRIMARY KEY, note text);"
            "INSERT INTO log (note) SELECT 'row ' || i FROM generate_series(1, 10) i;"
            "ANALYZE big; ANALYZE counter; ANALYZE log"
        )
    return database_url
