"""``pool.fetch()``: a statement whose connection dies under it runs once more on a fresh
connection when that is safe (read-only, or marked ``retry_safe``), never otherwise.

Written once, for both pools: ``test_retry.py`` is generated from ``test_retry_async.py``
(tools/async_to_sync.py). Which statements are judged read-only is in ``test_read_only.py``."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from perfkit.queries import AsyncTimedPool


def _kill_when_running(database_url: str, marker: str) -> threading.Thread:
    """Terminate the backend running the statement tagged ``marker`` once it runs."""

    admin = psycopg.connect(database_url, autocommit=True)  # ready before the statement runs

    def kill() -> None:
        deadline = time.monotonic() + 30
        with admin:
            while time.monotonic() < deadline:
                killed = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    + " WHERE query LIKE %s AND pid <> pg_backend_pid() AND state = 'active'",
                    (f"%{marker}%",),
                ).fetchall()
                if killed:
                    return
                time.sleep(0.01)

    thread = threading.Thread(target=kill)
    thread.start()
    return thread


async def _killed_once(database_url: str, run: Callable[[str], Awaitable[Any]]) -> Any:
    """``run(marker)`` while its first attempt's backend is terminated mid-statement."""
    marker = uuid.uuid4().hex
    killer = _kill_when_running(database_url, marker)
    try:
        return await run(marker)
    finally:
        await asyncio.to_thread(killer.join, 30)


async def test_a_read_killed_mid_statement_is_run_again(database_url: str) -> None:
    async with AsyncTimedPool(database_url, min_size=2, max_size=2) as pool:
        rows = await _killed_once(
            database_url,
            lambda m: pool.fetch(f"SELECT 7 AS n, pg_sleep(1) /* {m} */", row_factory=dict_row),
        )
        assert rows == [{"n": 7, "pg_sleep": ""}]
        stats = pool.stats()
        assert stats.pool.statements_retried == 1
        assert (stats.queries.count, stats.queries.errors) == (2, 1)  # both runs, once each


async def test_a_write_killed_mid_statement_is_not_run_again(database_url: str) -> None:
    async with AsyncTimedPool(database_url, min_size=2, max_size=2) as pool:
        await pool.fetch("CREATE TABLE w (x int)")
        with pytest.raises(psycopg.OperationalError):
            await _killed_once(
                database_url,
                lambda m: pool.fetch(f"INSERT INTO w SELECT 1 FROM pg_sleep(1) /* {m} */"),
            )
        assert pool.stats().pool.statements_retried == 0
        # opting in retries it
        await _killed_once(
            database_url,
            lambda m: pool.fetch(
                f"INSERT INTO w SELECT 2 FROM pg_sleep(1) /* {m} */", retry_safe=True
            ),
        )
        assert await pool.fetch("SELECT x FROM w") == [(2,)]
        assert pool.stats().pool.statements_retried == 1


async def test_retry_safe_false_never_retries_a_read(database_url: str) -> None:
    async with AsyncTimedPool(database_url, min_size=2, max_size=2) as pool:
        with pytest.raises(psycopg.OperationalError):
            await _killed_once(
                database_url,
                lambda m: pool.fetch(f"SELECT pg_sleep(1) /* {m} */", retry_safe=False),
            )


async def test_a_failing_statement_on_a_live_connection_is_not_retried(database_url: str) -> None:
    async with AsyncTimedPool(database_url, min_size=1, max_size=1, statement_timeout=0.1) as pool:
        with pytest.raises(psycopg.errors.QueryCanceled):
            await pool.fetch("SELECT pg_sleep(2)")
        assert pool.stats().pool.statements_retried == 0
