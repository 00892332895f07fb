"""TimedPool and AsyncTimedPool where each is written in its own way: statements from many
threads, or many tasks, all counted; and both pools on one QueryStats.

Hand-written: the rest of the pool tests come from ``test_pool_async.py``
(tools/async_to_sync.py)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from perfkit.queries import AsyncTimedPool, QueryStats, StatementStats, TimedPool

# Each test twice: with psycopg_pool's internals, and with its public API only.
pytestmark = pytest.mark.usefixtures("pool_internals")


def by_text(pool: TimedPool | AsyncTimedPool) -> dict[str, StatementStats]:
    return {entry.fingerprint: entry for entry in pool.stats().queries.by_fingerprint}


def test_statements_from_many_threads_are_all_counted(pool: TimedPool) -> None:
    def work() -> None:
        for _ in range(20):
            with pool.connection() as conn:
                conn.execute("SELECT 1")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert by_text(pool)["SELECT ?"].count == 80


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
