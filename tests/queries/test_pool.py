# Generated from test_pool_async.py by tools/async_to_sync.py: do not edit.
"""TimedPool on a real PostgreSQL: every way of running a statement is timed and counted.

Written once, for both pools: ``test_pool.py`` is generated from ``test_pool_async.py``
(tools/async_to_sync.py). Statements from many threads or tasks, and both pools at once, are
in ``test_pool_twins.py``."""

from __future__ import annotations

import time

import msgspec
import psycopg
import pytest
from psycopg import ClientCursor, sql
from psycopg_pool import ConnectionPool, PoolTimeout
from structlog.testing import capture_logs

from perfkit import ConfigError
from perfkit.queries import QueryStats, StatementStats, TimedPool, TimedPoolStats

# Each test twice: with psycopg_pool's internals, and with its public API only.
pytestmark = pytest.mark.usefixtures("pool_internals")


def by_text(pool: TimedPool) -> dict[str, StatementStats]:
    return {entry.fingerprint: entry for entry in pool.stats().queries.by_fingerprint}


def test_connection_is_a_real_psycopg_connection_and_pool_is_psycopg_pool(pool: TimedPool) -> None:
    assert isinstance(pool.pool, ConnectionPool)
    with pool.connection() as conn:
        assert isinstance(conn, psycopg.Connection)
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_every_way_of_running_a_statement_is_timed(pool: TimedPool) -> None:
    with pool.connection() as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO items VALUES (%s, %s)", [(i, f"n{i}") for i in range(10)])
            cur.execute("SELECT * FROM items WHERE id < %s", (4,))
            assert len(cur.fetchall()) == 4
            streamed = [row for row in cur.stream("SELECT id FROM items WHERE id >= %s", (3,))]
            assert len(streamed) == 7
            with cur.copy("COPY items (id, name) FROM STDIN") as copy:
                copy.write_row((100, "copied"))
                copy.write_row((101, "copied"))
        with conn.cursor("big") as named:
            named.execute("SELECT id FROM items ORDER BY id")
            assert named.fetchone() == (0,)
            assert len(named.fetchmany(3)) == 3
            assert len([row for row in named]) == 8
    stats = by_text(pool)
    assert stats["INSERT INTO items VALUES (?, ?)"].rows == 10
    assert stats["SELECT * FROM items WHERE id < ?"].rows == 4
    assert stats["SELECT id FROM items WHERE id >= ?"].rows == 7
    assert stats["COPY items(id, name) FROM STDIN"].rows == 2
    named_entry = stats["SELECT id FROM items ORDER BY id"]
    assert (named_entry.count, named_entry.rows) == (1, 12)
    for entry in stats.values():
        assert entry.total_ms > 0 and entry.errors == 0
    assert pool.stats().queries.count == len(stats) == 6


def test_slow_query_is_counted_listed_and_logged(pool: TimedPool) -> None:
    with capture_logs() as events, pool.connection() as conn:
        conn.execute("SELECT pg_sleep(%s)", (0.2,))
        conn.execute("SELECT pg_sleep(%s)", (0.001,))
    snapshot = pool.stats().queries
    entry = by_text(pool)["SELECT pg_sleep(?)"]
    assert entry.count == 2 and entry.slow == 1
    assert 200 <= entry.max_ms < 400
    assert entry.p99_ms == pytest.approx(entry.max_ms, rel=0.05)
    assert snapshot.slow == 1 and snapshot.slow_pct == pytest.approx(50)
    (slowest,) = snapshot.slowest
    assert slowest.fingerprint == "SELECT pg_sleep(?)"
    assert slowest.duration_ms == pytest.approx(entry.max_ms)
    assert slowest.pool == pool.name
    (event,) = [e for e in events if e["event"] == "slow_query"]
    assert event["fingerprint"] == "SELECT pg_sleep(?)"
    assert event["duration_ms"] >= 200
    assert "0.2" not in repr(event)


def test_timings_and_percentiles_match_the_client_clock(pool: TimedPool) -> None:
    measured: list[float] = []
    with pool.connection() as conn:
        for millis in [2, 4, 6, 8, 10, 12, 14, 16, 18, 20] * 2 + [40, 60]:
            start = time.perf_counter()
            conn.execute("SELECT pg_sleep(%s)", (millis / 1000,))
            measured.append((time.perf_counter() - start) * 1000)
    entry = by_text(pool)["SELECT pg_sleep(?)"]
    measured.sort()

    def exact(fraction: float) -> float:
        return measured[max(1, round(fraction * len(measured))) - 1]

    assert entry.count == len(measured)
    # the pool's clock runs inside the client's: a little less, never more
    assert 0 < sum(measured) - entry.total_ms < 0.5 * len(measured)
    # Each is inside the client's time of its statement; the client's extra time is
    # microseconds, up to a scheduler slice when the machine is loaded (1 ms seen).
    assert 0 <= measured[-1] - entry.max_ms < 5
    assert 0 <= measured[0] - entry.min_ms < 5
    for percentile, fraction in ((entry.p50_ms, 0.5), (entry.p95_ms, 0.95), (entry.p99_ms, 0.99)):
        # one histogram bucket (9.05 %: the estimate and the value share it) plus the
        # client's extra microseconds
        assert abs(percentile - exact(fraction)) <= 0.0905 * exact(fraction) + 0.5


def test_failing_statement_is_reraised_unchanged_and_counted(pool: TimedPool) -> None:
    raw = psycopg.connect(pool.pool.conninfo)
    try:
        raw.execute("SELECT * FROM no_such_table")
    except psycopg.errors.UndefinedTable as exc:
        expected = (type(exc), exc.sqlstate, str(exc))
    finally:
        raw.close()
    with pool.connection() as conn, pytest.raises(psycopg.Error) as caught:
        conn.execute("SELECT * FROM no_such_table")
    assert (type(caught.value), caught.value.sqlstate, str(caught.value)) == expected
    assert caught.value.__cause__ is None
    entry = by_text(pool)["SELECT * FROM no_such_table"]
    assert (entry.count, entry.errors) == (1, 1)
    assert pool.stats().queries.errors == 1


def test_failing_named_cursor_is_counted(pool: TimedPool) -> None:
    with pool.connection() as conn, conn.cursor("c") as cur, pytest.raises(psycopg.Error):
        cur.execute("SELECT 1 / 0 FROM generate_series(1, 3)")
        cur.fetchall()
    assert by_text(pool)["SELECT ? / ? FROM generate_series(?, ?)"].errors == 1


def test_pool_exhaustion_raises_pool_timeout_and_is_counted(database_url: str) -> None:
    with TimedPool(database_url, min_size=1, max_size=1, timeout=0.3) as pool:
        held = pool.getconn()
        try:
            with pytest.raises(PoolTimeout), pool.connection():
                pass
            with pytest.raises(PoolTimeout), pool.connection(timeout=0.1):
                pass
        finally:
            pool.putconn(held)
        stats = pool.stats().pool
        assert stats.timeouts == 2
        assert stats.requests_errors == 2
        assert stats.acquire_wait_ms >= 350
        with pool.connection() as conn:
            conn.execute("SELECT 1")


def test_pool_stats_show_use_and_utilization(database_url: str) -> None:
    with TimedPool(database_url, min_size=2, max_size=4) as pool:
        pool.wait(10)
        one, two = (pool.getconn(), pool.getconn())
        stats = pool.stats().pool
        assert (stats.size, stats.in_use, stats.idle) == (2, 2, 0)
        assert stats.utilization_pct == pytest.approx(50)
        assert (stats.min_size, stats.max_size, stats.name) == (2, 4, pool.name)
        pool.putconn(one)
        pool.putconn(two)
        stats = pool.stats().pool
        assert stats.requests == 2 and stats.connections >= 2 and (stats.connection_errors == 0)


def test_stats_is_a_struct_that_encodes_to_json(pool: TimedPool) -> None:
    with pool.connection() as conn:
        conn.execute("SELECT 1")
    stats = pool.stats()
    assert isinstance(stats, TimedPoolStats)
    assert msgspec.json.decode(msgspec.json.encode(stats), type=TimedPoolStats) == stats


def test_reset_stats_zeroes_pool_and_queries(pool: TimedPool) -> None:
    with pool.connection() as conn:
        conn.execute("SELECT 1")
    pool.reset_stats()
    stats = pool.stats()
    assert stats.queries.count == 0 and stats.pool.requests == 0


def test_one_query_stats_shared_by_two_pools(database_url: str) -> None:
    shared = QueryStats()
    with (
        TimedPool(database_url, query_stats=shared, min_size=1, name="a") as one,
        TimedPool(database_url, query_stats=shared, min_size=1, name="b") as two,
    ):
        for pool in (one, two):
            with pool.connection() as conn:
                conn.execute("SELECT 1")
        assert one.stats().queries.count == two.stats().queries.count == 2
        assert one.stats().pool.name == "a"


def test_extra_arguments_reach_psycopg_pool_and_connections(database_url: str) -> None:
    configured: list[object] = []

    def configure(conn: psycopg.Connection[object]) -> None:
        configured.append(conn)

    with TimedPool(
        database_url,
        min_size=1,
        check=ConnectionPool.check_connection,
        reconnect_timeout=7.5,
        kwargs={"cursor_factory": ClientCursor, "application_name": "perfkit-test"},
        configure=configure,
    ) as pool:
        assert pool.pool.reconnect_timeout == 7.5
        assert pool.pool._check is ConnectionPool.check_connection
        with pool.connection() as conn:
            # Still the caller's cursor class.
            assert issubclass(conn.cursor_factory, ClientCursor)
            name = conn.execute("SELECT current_setting('application_name')").fetchone()
            assert name == ("perfkit-test",)
            composed = sql.SQL("SELECT {}").format(sql.Literal(5))
            assert conn.execute(composed).fetchone() == (5,)
        assert configured  # the caller's configure ran too
        pool.check()  # psycopg_pool's own check runs "": not a statement
        assert "" not in by_text(pool)
        assert by_text(pool)["SELECT current_setting(?)"].count == 1
        assert by_text(pool)["SELECT ?"].count == 1


def test_from_env_reads_the_settings(database_url: str) -> None:
    environ = {
        "DATABASE_URL": database_url,
        "DB_POOL_MAX": "5",
        "DB_POOL_MIN": "1",
        "DB_POOL_IDLE_TIMEOUT": "12",
        "DB_POOL_TIMEOUT": "3",
        "SLOW_QUERY_MS": "250",
    }
    pool = TimedPool.from_env(environ, name="env")
    assert (pool.min_size, pool.max_size) == (1, 5)
    assert (pool.pool.max_idle, pool.pool.timeout) == (12, 3)
    assert pool.query_stats.slow_query_ms == 250
    assert pool.name == "env"
    assert pool.closed  # not opened until asked


def test_configure_runs_on_a_pool_from_env(database_url: str) -> None:
    seen: list[psycopg.Connection[object]] = []

    def configure(conn: psycopg.Connection[object]) -> None:
        seen.append(conn)

    pool = TimedPool.from_env(
        {"DATABASE_URL": database_url, "DB_POOL_MIN": "1", "SLOW_QUERY_MS": "5"},
        configure=configure,
    )
    assert pool.query_stats.slow_query_ms == 5
    with pool:
        with pool.connection() as conn:
            conn.execute("SELECT 1")
        assert seen


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"DB_POOL_MAX": "lots"}, "DB_POOL_MAX"),
        ({"DB_POOL_MAX": "0"}, "DB_POOL_MAX"),
        ({"DB_POOL_MIN": "-1"}, "DB_POOL_MIN"),
        ({"DB_POOL_IDLE_TIMEOUT": "0"}, "DB_POOL_IDLE_TIMEOUT"),
        ({"DB_POOL_TIMEOUT": "soon"}, "DB_POOL_TIMEOUT"),
        ({"SLOW_QUERY_MS": "-5"}, "SLOW_QUERY_MS"),
        ({"DB_POOL_MIN": "30"}, "DB_POOL_MIN"),
        ({}, "DATABASE_URL"),
    ],
)
def test_from_env_bad_values_name_the_variable(environ: dict[str, str], variable: str) -> None:
    environ = {"DATABASE_URL": "postgresql://x/y", **environ} if variable != "DATABASE_URL" else {}
    with pytest.raises(ConfigError, match=variable):
        TimedPool.from_env(environ)


@pytest.mark.parametrize(
    "arguments", [{"min_size": -1}, {"max_size": 0}, {"min_size": 5, "max_size": 2}]
)
def test_bad_sizes_raise_config_error(arguments: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        TimedPool("postgresql://x/y", **arguments)


def test_connection_block_commits_rolls_back_returns_and_counts_usage(pool: TimedPool) -> None:
    """``with pool.connection()`` keeps psycopg_pool's behaviour: the block's
    transaction is committed on success and rolled back on an exception, the connection goes
    back to the pool either way, and the time it was lent out is counted in ``usage_ms``."""
    with pool.connection() as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (1)")
        time.sleep(0.05)
    with pytest.raises(ZeroDivisionError), pool.connection() as conn:
        conn.execute("INSERT INTO kept VALUES (2)")
        raise ZeroDivisionError
    with pool.connection() as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(1,)]
    stats = pool.stats().pool
    assert stats.in_use == 0 and stats.idle == stats.size
    assert stats.usage_ms >= 45


def test_reconnection_attempts_are_at_most_half_the_timeout_apart(pool_internals: bool) -> None:
    # Nothing listens on port 1: each attempt is refused at once and counted.
    url = "postgresql://postgres@127.0.0.1:1/test"
    with TimedPool(url, min_size=1, max_size=1, timeout=1.0) as pool:
        # Capped: 0.5 s apart, 5 attempts in about 2 s. psycopg_pool's own backoff (the
        # public way) waits 1, 2, 4 s: 3 attempts in 6 s, so only 2 are asked of it.
        wanted = 5 if pool_internals else 2
        deadline = time.monotonic() + 6
        while pool.stats().pool.connection_errors < wanted:
            assert time.monotonic() < deadline, pool.stats().pool.connection_errors
            time.sleep(0.05)
