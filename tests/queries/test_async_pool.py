"""AsyncTimedPool: the same timing and counting as TimedPool, on asyncio."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from structlog.testing import capture_logs

from perfkit import ConfigError
from perfkit.queries import AsyncTimedPool, QueryStats, StatementStats, TimedPool

# Each test twice: with psycopg_pool's internals, and with its public API only.
pytestmark = pytest.mark.usefixtures("pool_internals")


def by_text(pool: AsyncTimedPool) -> dict[str, StatementStats]:
    return {entry.fingerprint: entry for entry in pool.stats().queries.by_fingerprint}


async def test_every_way_of_running_a_statement_is_timed(apool: AsyncTimedPool) -> None:
    assert isinstance(apool.pool, AsyncConnectionPool)
    async with apool.connection() as conn:
        assert isinstance(conn, psycopg.AsyncConnection)
        await conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO items VALUES (%s, %s)", [(i, f"n{i}") for i in range(10)]
            )
            await cur.execute("SELECT * FROM items WHERE id < %s", (4,))
            assert len(await cur.fetchall()) == 4
            streamed = [
                row async for row in cur.stream("SELECT id FROM items WHERE id >= %s", (3,))
            ]
            assert len(streamed) == 7
            async with cur.copy("COPY items (id, name) FROM STDIN") as copy:
                await copy.write_row((100, "copied"))
                await copy.write_row((101, "copied"))
        async with conn.cursor("big") as named:
            await named.execute("SELECT id FROM items ORDER BY id")
            assert await named.fetchone() == (0,)
            assert len(await named.fetchmany(3)) == 3
            assert len([row async for row in named]) == 8
    stats = by_text(apool)
    assert stats["INSERT INTO items VALUES (?, ?)"].rows == 10
    assert stats["SELECT * FROM items WHERE id < ?"].rows == 4
    assert stats["SELECT id FROM items WHERE id >= ?"].rows == 7
    assert stats["COPY items(id, name) FROM STDIN"].rows == 2
    named_entry = stats["SELECT id FROM items ORDER BY id"]
    assert (named_entry.count, named_entry.rows) == (1, 12)
    assert apool.stats().queries.count == 6


async def test_slow_query_is_counted_listed_and_logged(apool: AsyncTimedPool) -> None:
    with capture_logs() as events:
        async with apool.connection() as conn:
            await conn.execute("SELECT pg_sleep(%s)", (0.2,))
    entry = by_text(apool)["SELECT pg_sleep(?)"]
    assert entry.slow == 1 and 200 <= entry.max_ms < 400
    (slowest,) = apool.stats().queries.slowest
    assert slowest.fingerprint == "SELECT pg_sleep(?)"
    assert [e["fingerprint"] for e in events if e["event"] == "slow_query"] == [
        "SELECT pg_sleep(?)"
    ]


async def test_failing_statement_is_reraised_unchanged_and_counted(
    apool: AsyncTimedPool,
) -> None:
    async with apool.connection() as conn:
        with pytest.raises(psycopg.errors.UndefinedTable) as caught:
            await conn.execute("SELECT * FROM no_such_table")
    assert type(caught.value) is psycopg.errors.UndefinedTable
    assert caught.value.__cause__ is None
    entry = by_text(apool)["SELECT * FROM no_such_table"]
    assert (entry.count, entry.errors) == (1, 1)


async def test_pool_exhaustion_raises_pool_timeout_and_is_counted(database_url: str) -> None:
    async with AsyncTimedPool(database_url, min_size=1, max_size=1, timeout=0.3) as pool:
        held = await pool.getconn()
        try:
            with pytest.raises(PoolTimeout):
                async with pool.connection():
                    pass
        finally:
            await pool.putconn(held)
        assert pool.stats().pool.timeouts == 1
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")


async def test_concurrent_tasks_are_all_counted(apool: AsyncTimedPool) -> None:
    async def work() -> None:
        for _ in range(10):
            async with apool.connection() as conn:
                await conn.execute("SELECT 1")

    await asyncio.gather(*(work() for _ in range(5)))
    assert by_text(apool)["SELECT ?"].count == 50
    assert apool.stats().pool.requests == 50


async def test_sync_and_async_pools_report_the_same_shape(database_url: str) -> None:
    shared = QueryStats()
    with TimedPool(database_url, query_stats=shared, min_size=1) as sync_pool:
        with sync_pool.connection() as conn:
            conn.execute("SELECT %s::int", (1,))
        async with AsyncTimedPool(database_url, query_stats=shared, min_size=1) as async_pool:
            async with async_pool.connection() as aconn:
                await aconn.execute("SELECT %s::int", (2,))
            (entry,) = async_pool.stats().queries.by_fingerprint
            assert (entry.fingerprint, entry.count) == ("SELECT ?::int", 2)
            assert type(async_pool.stats()) is type(sync_pool.stats())


async def test_async_configure_runs_and_from_env_works(database_url: str) -> None:
    seen: list[psycopg.AsyncConnection[object]] = []

    async def configure(conn: psycopg.AsyncConnection[object]) -> None:
        seen.append(conn)

    pool = AsyncTimedPool.from_env(
        {"DATABASE_URL": database_url, "DB_POOL_MIN": "1", "SLOW_QUERY_MS": "5"},
        configure=configure,
    )
    assert pool.query_stats.slow_query_ms == 5
    async with pool:
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
        assert seen


def test_async_bad_values_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="DB_POOL_MAX"):
        AsyncTimedPool.from_env({"DATABASE_URL": "postgresql://x/y", "DB_POOL_MAX": "0"})


async def test_connection_block_commits_rolls_back_returns_and_counts_usage(
    apool: AsyncTimedPool,
) -> None:
    """``async with pool.connection()`` keeps psycopg_pool's behaviour (see the sync test)."""
    async with apool.connection() as conn:
        await conn.execute("CREATE TABLE kept (x int)")
        await conn.execute("INSERT INTO kept VALUES (1)")
        await asyncio.sleep(0.05)
    with pytest.raises(ZeroDivisionError):
        async with apool.connection() as conn:
            await conn.execute("INSERT INTO kept VALUES (2)")
            raise ZeroDivisionError
    async with apool.connection() as conn:
        assert await (await conn.execute("SELECT x FROM kept")).fetchall() == [(1,)]
    stats = apool.stats().pool
    assert stats.in_use == 0 and stats.idle == stats.size
    assert stats.usage_ms >= 45
