# Generated from test_bounded_waits_async.py by tools/async_to_sync.py: do not edit.
"""Bounded waits (DB_POOL_TIMEOUT, DB_POOL_MAX_WAITING, DB_STATEMENT_TIMEOUT) and the
checkout that verifies suspect connections, on the shared server.

Written once, for both pools: ``test_bounded_waits.py`` is generated from
``test_bounded_waits_async.py`` (tools/async_to_sync.py)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from psycopg import errors
from psycopg_pool import TooManyRequests

from perfkit import ConfigError
from perfkit.queries import TimedPool
from perfkit.queries._watch import POLL_AFTER_IDLE


def test_env_sets_max_waiting_and_statement_timeout(database_url: str) -> None:
    environ = {
        "DATABASE_URL": database_url,
        "DB_POOL_MAX_WAITING": "7",
        "DB_STATEMENT_TIMEOUT": "0.25",
    }
    with TimedPool.from_env(environ, min_size=1, max_size=1) as pool:
        assert pool.pool.max_waiting == 7
        with pool.connection() as conn:
            assert conn.execute("SHOW statement_timeout").fetchone() == ("250ms",)
            # the test's own options (its search_path) are kept alongside
            search_path = conn.execute("SHOW search_path").fetchone()
            assert search_path == (database_url.split("=")[-1],)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"DB_POOL_MAX_WAITING": "-1"}, "DB_POOL_MAX_WAITING"),
        ({"DB_STATEMENT_TIMEOUT": "0"}, "DB_STATEMENT_TIMEOUT"),
        ({"DB_STATEMENT_TIMEOUT": "never"}, "DB_STATEMENT_TIMEOUT"),
    ],
)
def test_bad_wait_settings_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        TimedPool.from_env({"DATABASE_URL": "postgresql://x/y", **environ})


def test_statement_timeout_cancels_a_long_statement(database_url: str) -> None:
    with TimedPool(database_url, min_size=1, max_size=1, statement_timeout=0.2) as pool:
        started = time.monotonic()
        with pytest.raises(errors.QueryCanceled), pool.connection() as conn:
            conn.execute("SELECT pg_sleep(5)")
        assert time.monotonic() - started < 3
        with pool.connection() as conn:  # the connection is still good
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert pool.stats().queries.errors == 1


def test_one_waiter_too_many_is_refused_at_once_and_counted(database_url: str) -> None:
    with TimedPool(database_url, min_size=1, max_size=1, timeout=5, max_waiting=1) as pool:

        def take_and_give_back() -> None:
            pool.putconn(pool.getconn())

        held = pool.getconn()
        waiter = threading.Thread(target=take_and_give_back)
        waiter.start()
        deadline = time.monotonic() + 10
        while pool.stats().pool.waiting < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(TooManyRequests, match="waiting"):
            pool.getconn()
        assert time.monotonic() - started < 1  # refused at once, not after the timeout
        pool.putconn(held)
        waiter.join(10)
        stats = pool.stats().pool
        assert stats.requests_rejected == 1 and stats.timeouts == 0


def _terminate(database_url: str, pids: list[int]) -> None:
    with psycopg.connect(database_url, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_terminated_idle_connection_is_replaced_before_use(database_url: str) -> None:
    """An idle-connection reaper (pg_terminate_backend) leaves no failed request."""
    with TimedPool(database_url, min_size=3, max_size=3) as pool:
        pool.wait(10)
        conns = [pool.getconn() for _ in range(3)]
        pids = [conn.info.backend_pid for conn in conns]
        for conn in conns:
            pool.putconn(conn)
        returned = time.monotonic()
        _terminate(database_url, pids)
        # A reaper kills connections that sat idle; a checkout polls only those: sitting
        # idle past POLL_AFTER_IDLE is the behaviour under test.
        time.sleep(max(0.0, returned + POLL_AFTER_IDLE - time.monotonic()) + 0.01)
        for _ in range(6):
            with pool.connection() as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        stats = pool.stats()
        assert stats.pool.connections_replaced == 3
        assert stats.queries.errors == 0


def test_after_one_dead_connection_the_others_are_verified_once(database_url: str) -> None:
    """A connection that died unnoticed fails its statement; the pool then verifies every
    connection that was idle before (one round trip each), then trusts them again."""
    with TimedPool(database_url, min_size=3, max_size=3) as pool:
        pool.wait(10)
        conns = [pool.getconn() for _ in range(3)]
        victim = conns[0]
        for conn in conns[1:]:
            pool.putconn(conn)
        _terminate(database_url, [victim.info.backend_pid])
        with pytest.raises(psycopg.OperationalError):
            victim.execute("SELECT 1")
        pool.putconn(victim)
        for _ in range(6):
            with pool.connection() as conn:
                conn.execute("SELECT 1")
        stats = pool.stats().pool
        assert stats.connections_verified == 2  # the two idle ones, once each
        assert stats.connections_replaced == 0


def test_read_only_refusal_replaces_every_connection(database_url: str) -> None:
    with TimedPool(database_url, min_size=2, max_size=2) as pool:
        pool.wait(10)
        with pool.connection() as conn:
            first = conn.info.backend_pid
            conn.execute("CREATE TABLE t (x int)")
        with pool.connection() as conn:
            conn.execute("SET default_transaction_read_only = on")
            conn.commit()
            with pytest.raises(errors.ReadOnlySqlTransaction):
                conn.execute("INSERT INTO t VALUES (1)")
        pids = set()
        for _ in range(4):
            with pool.connection() as conn:
                conn.execute("INSERT INTO t VALUES (1)")
                pids.add(conn.info.backend_pid)
        assert first not in pids  # every connection made before the refusal was replaced
        assert pool.stats().pool.connections_replaced == 2
