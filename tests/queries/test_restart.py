"""A database that goes away and comes back: the same pool recovers, no app restart."""

from __future__ import annotations

import time

import psycopg
import pytest

from perfkit.queries import TimedPool
from tests._servers import RestartablePostgres


def run(pool: TimedPool) -> object:
    with pool.connection(timeout=2) as conn:
        return conn.execute("SELECT 1").fetchone()


@pytest.mark.slow
def test_pool_recovers_after_the_database_restarts(private_postgres: RestartablePostgres) -> None:
    with TimedPool(private_postgres.url, min_size=2, max_size=2, timeout=2) as pool:
        pool.wait(10)
        assert run(pool) == (1,)

        private_postgres.stop()
        with pytest.raises(psycopg.OperationalError):
            for _ in range(3):  # every pooled connection is now dead
                run(pool)

        private_postgres.start()
        assert private_postgres._server.get_uri() == private_postgres.url
        deadline = time.monotonic() + 10
        while True:
            try:
                assert run(pool) == (1,)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        for _ in range(5):  # and it stays healthy
            assert run(pool) == (1,)

        stats = pool.stats()
        # The dead connections were found at checkout, before a statement was sent on one.
        assert stats.queries.errors == 0
        assert stats.pool.connections_replaced >= 2
        assert stats.pool.connections > 2  # replacement connections were opened
