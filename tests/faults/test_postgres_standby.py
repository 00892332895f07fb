"""A primary that becomes a read-only standby (as after a failover that demoted it): the
pool drops its connections to it, and with a multi-host conninfo finds the new primary."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from perfkit.queries import TimedPool
from tests.cache.conftest import eventually
from tests.faults._postgres import Cluster

pytestmark = pytest.mark.slow


@pytest.fixture
def primary() -> Iterator[Cluster]:
    server = Cluster()
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE writes (at timestamptz DEFAULT now())")
    yield server
    server.close()


@pytest.fixture
def standby() -> Iterator[Cluster]:
    """A second cluster, started as a standby (it refuses writes until promoted)."""
    server = Cluster()
    server.restart_as_standby()
    yield server
    server.close()


def write(pool: TimedPool) -> bool:
    try:
        with pool.connection() as conn:
            conn.execute("INSERT INTO writes DEFAULT VALUES")
    except errors.ReadOnlySqlTransaction:
        return False
    return True


def demote(server: Cluster, how: str) -> None:
    if how == "restarted as a standby":
        server.restart_as_standby()
    else:  # read-only while its connections stay open: only a statement can tell
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            conn.execute("SELECT pg_reload_conf()")
        # pg_reload_conf() only signals the postmaster, which reloads, then signals every
        # backend. Until a new backend (forked from it) starts read-only, the pool's open
        # ones may not have been told yet, and on a loaded machine took several more writes.
        eventually(lambda: starts_read_only(server), timeout=10, pause=0.01)


def starts_read_only(server: Cluster) -> bool:
    with psycopg.connect(server.url) as conn:
        return conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)


@pytest.mark.parametrize("how", ["restarted as a standby", "made read-only in place"])
def test_a_demoted_primary_is_dropped_and_the_new_one_found(
    primary: Cluster, standby: Cluster, how: str
) -> None:
    conninfo = (
        f"host=127.0.0.1,127.0.0.1 port={primary.port},{standby.port} user=postgres"
        " dbname=postgres target_session_attrs=read-write"
    )
    with TimedPool(conninfo, min_size=4, max_size=4, timeout=10) as pool:
        pool.wait(30)
        assert all(write(pool) for _ in range(8))

        standby.promote()  # the failover: the standby becomes the primary ...
        with psycopg.connect(standby.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE writes (at timestamptz DEFAULT now())")
        demote(primary, how)  # ... and the old primary is demoted

        results = [write(pool) for _ in range(20)]
        # At most the one that found out fails (a backend may still take a write or two
        # before it has read its reloaded settings); from then on every write succeeds.
        assert results.count(False) <= 1, results
        with psycopg.connect(standby.url) as conn:
            on_new_primary = conn.execute("SELECT count(*) FROM writes").fetchone()
        assert on_new_primary is not None and on_new_primary[0] >= 15
        stats = pool.stats().pool
        assert stats.connections_replaced >= 3  # every connection to the old primary


def test_a_single_host_pool_keeps_reads_and_refuses_writes_on_a_standby(
    primary: Cluster,
) -> None:
    # One connection: with two, the pool may open the second after the refusal (it replaces
    # the ones the restart closed in the background), and a connection that new is rightly
    # not replaced, so whether the count moves would depend on the timing.
    with TimedPool(primary.url, min_size=1, max_size=1, timeout=10) as pool:
        pool.wait(30)
        assert write(pool)
        primary.restart_as_standby()
        with pool.connection() as conn:  # reads go on, on replaced connections
            assert conn.execute("SELECT count(*) FROM writes").fetchone() == (1,)
        assert not write(pool)
        replaced = pool.stats().pool.connections_replaced
        primary.promote()
        assert write(pool)  # no stale connection is handed out after the refusal
        assert pool.stats().pool.connections_replaced > replaced
