"""The query layer through PostgreSQL faults, on private clusters the tests start and kill.

For each fault: the requests that failed are counted, the time to recover is measured,
the pool and the server are back to ``min_size`` connections (nothing leaked), and the
statement statistics count every statement that ran exactly once. Each test prints its
row of the matrix in docs/reliability.md (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from psycopg_pool import PoolTimeout, TooManyRequests

from perfkit.queries import AsyncTimedPool, TimedPool
from tests.faults._postgres import Cluster, TcpProxy, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A private PostgreSQL this test may restart, stop or freeze."""
    server = Cluster()
    yield server
    server.close()


@dataclass
class Load:
    """Requests run against a pool, and what became of them."""

    pool: TimedPool
    statement: str = "SELECT 1"
    fetch: bool = False  # through pool.fetch(), which runs a read again on a fresh connection
    ok: int = 0
    failed: int = 0
    statements: int = 0  # statements sent (the pool's stats must count each once)
    errors: list[BaseException] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)  # how long each failed request took
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self) -> bool:
        """One request: a connection, one statement; True when it succeeded."""
        start = time.monotonic()
        try:
            if self.fetch:
                with self.lock:
                    self.statements += 1
                self.pool.fetch(self.statement)
            else:
                with self.pool.connection() as conn:
                    with self.lock:
                        self.statements += 1
                    conn.execute(self.statement)
        except psycopg.Error as exc:
            with self.lock:
                self.failed += 1
                self.errors.append(exc)
                self.waits.append(time.monotonic() - start)
            return False
        with self.lock:
            self.ok += 1
        return True

    def burst(self, number: int) -> None:
        """``number`` requests at once, each in its own thread."""
        threads = [threading.Thread(target=self.request) for _ in range(number)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

    def recover(self, timeout: float = 30.0) -> float:
        """Seconds until a request succeeds again."""
        return wait_for(self.request, timeout, "a request to succeed")


def row(fault: str, failed: int, recovery: float, **notes: object) -> None:
    extra = ", ".join(f"{key}={value}" for key, value in notes.items())
    print(f"\nFAULT-ROW | {fault} | failed {failed} | recovery {recovery:.2f} s | {extra}")


def assert_clean(load: Load, cluster: Cluster) -> None:
    """Nothing leaked, nothing lost or counted twice."""
    pool = load.pool
    wait_for(
        lambda: (s := pool.stats().pool).size == pool.min_size and s.idle == pool.min_size,
        timeout=30,
        what=f"the pool back at min_size={pool.min_size}",
    )
    wait_for(lambda: cluster.backends() == pool.min_size, 30, "the server's connections")
    stats = pool.stats()
    sent = load.statements + stats.pool.statements_retried  # a retried read is sent twice
    assert stats.queries.count == sent, stats.queries
    assert stats.queries.count - stats.queries.errors == load.ok


def open_pool(url: str, **options: object) -> TimedPool:
    arguments: dict[str, object] = {"min_size": 8, "max_size": 20, "max_idle": 1.0, "timeout": 5}
    pool = TimedPool(url, **(arguments | options))  # type: ignore[arg-type]
    pool.open(wait=True, timeout=30)
    return pool


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_no_request_fails_after_a_restart(cluster: Cluster, mode: str) -> None:
    """The issue's case: 8 idle connections die with the server; 20 requests follow."""
    pool = open_pool(cluster.url)
    try:
        load = Load(pool)
        for _ in range(20):  # served some requests, on its 8 connections
            load.request()
        assert load.failed == 0
        cluster.restart(mode)
        started = time.monotonic()
        for _ in range(20):
            load.request()
        recovery = time.monotonic() - started
        row(f"restart -m {mode}", load.failed, recovery, requests=20)
        assert load.failed == 0, load.errors
        stats = pool.stats().pool
        assert stats.connections_replaced == 8  # found dead before use, not by a request
        assert stats.requests == load.ok + load.failed
        assert_clean(load, cluster)
    finally:
        pool.close()


async def test_no_request_fails_after_a_restart_async(cluster: Cluster) -> None:
    async with AsyncTimedPool(cluster.url, min_size=8, max_size=20, timeout=5) as pool:
        await pool.wait(30)

        async def request() -> bool:
            try:
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1")
            except psycopg.Error:
                return False
            return True

        assert all([await request() for _ in range(20)])
        await asyncio.to_thread(cluster.restart, "fast")
        results = [await request() for _ in range(20)]
        row("restart -m fast (async pool)", results.count(False), 0.0, requests=20)
        assert all(results)
        assert pool.stats().pool.connections_replaced == 8


def test_a_stopped_server_fails_fast_and_is_found_again(cluster: Cluster) -> None:
    """Stopped for 10 s: each request fails within the pool timeout, the pool recovers."""
    pool = open_pool(cluster.url, timeout=1.0)
    try:
        load = Load(pool)
        load.burst(8)
        cluster.stop("fast")
        stopped = time.monotonic()
        while time.monotonic() - stopped < 10:
            assert not load.request()
        failed_while_down = load.failed
        cluster.start()
        recovery = load.recover()
        row("stop 10 s", failed_while_down, recovery, max_wait=f"{max(load.waits):.2f} s")
        assert max(load.waits) < 1.0 + 1.0  # bounded by the pool timeout (and a loaded CPU)
        assert recovery <= 5.0
        before = load.failed
        for _ in range(20):
            load.request()
        assert load.failed == before
        assert_clean(load, cluster)
    finally:
        pool.close()


@pytest.mark.parametrize("fetch", [False, True], ids=["connection()", "fetch()"])
def test_a_connection_reset_mid_query_fails_only_the_queries_in_flight(
    cluster: Cluster, fetch: bool
) -> None:
    """Through ``connection()`` the 4 statements in flight fail (they may have run);
    through ``fetch()`` the 4 reads run again on fresh connections and succeed."""
    proxy = TcpProxy(cluster.port)
    pool = open_pool(proxy.url(), min_size=4, max_size=8)
    try:
        load = Load(pool, statement="SELECT pg_sleep(1)", fetch=fetch)
        threads = [threading.Thread(target=load.request) for _ in range(4)]
        for thread in threads:
            thread.start()
        wait_for(lambda: cluster.backends() >= 4 and pool.stats().pool.in_use == 4)
        wait_for(lambda: load.statements == 4)
        proxy.reset()
        for thread in threads:
            thread.join(30)
        in_flight_failed = load.failed
        assert in_flight_failed == (0 if fetch else 4), load.errors
        load.statement = "SELECT 1"
        started = time.monotonic()
        for _ in range(20):
            load.request()
        row(
            f"connection reset mid-query (TCP RST), {'fetch()' if fetch else 'connection()'}",
            load.failed,
            time.monotonic() - started,
            in_flight=4,
            after=load.failed - in_flight_failed,
            retried=pool.stats().pool.statements_retried,
        )
        assert load.failed == in_flight_failed  # the requests after the reset all succeed
        assert_clean(load, cluster)
    finally:
        pool.close()
        proxy.close()


def test_a_hung_server_bounds_the_waits_and_recovers_when_it_resumes(cluster: Cluster) -> None:
    pool = open_pool(cluster.url, min_size=4, max_size=4, timeout=1.0, max_waiting=4)
    try:
        load = Load(pool)
        load.burst(4)
        pids = cluster.freeze()
        try:
            # 4 requests get a connection and hang with the server; 4 wait a second and
            # time out; the rest are refused at once.
            threads = [threading.Thread(target=load.request) for _ in range(12)]
            for thread in threads:
                thread.start()
            wait_for(lambda: load.failed == 8, 30, "the requests that cannot be served")
        finally:
            cluster.thaw(pids)
        thawed = time.monotonic()
        for thread in threads:
            thread.join(60)
        recovery = time.monotonic() - thawed
        stats = pool.stats().pool
        kinds = sorted(type(exc).__name__ for exc in load.errors)
        row("hung server (SIGSTOP)", load.failed, recovery, failures=kinds)
        assert kinds == ["PoolTimeout"] * 4 + ["TooManyRequests"] * 4
        assert stats.timeouts == 4 and stats.requests_rejected == 4
        assert max(load.waits) < 1.0 + 1.0
        assert load.ok == 4 + 4  # the hung requests finished once the server resumed
        assert recovery <= 5.0
        assert_clean(load, cluster)
    finally:
        pool.close()


def test_a_server_that_accepts_then_stalls(cluster: Cluster) -> None:
    proxy = TcpProxy(cluster.port)
    pool = open_pool(proxy.url(), min_size=2, max_size=4, timeout=1.0)
    try:
        load = Load(pool)
        load.burst(2)
        proxy.stall()
        proxy.reset()  # the old connections die; every new one hangs after accept
        for _ in range(3):
            assert not load.request()
        # A connection given back moments before the reset is not polled at checkout, so
        # its statement may be the one that finds it dead; then the pool waits, bounded.
        others = [exc for exc in load.errors if not isinstance(exc, PoolTimeout)]
        assert len(others) <= 1, load.errors
        assert max(load.waits) < 1.0 + 1.0
        proxy.resume()
        recovery = load.recover()
        row("accepts then stalls", load.failed, recovery, max_wait=f"{max(load.waits):.2f} s")
        assert recovery <= 5.0
        assert_clean(load, cluster)
    finally:
        pool.close()
        proxy.close()


def test_a_burst_of_ten_times_max_size_is_bounded_and_leaves_nothing(cluster: Cluster) -> None:
    pool = open_pool(cluster.url, min_size=2, max_size=4, timeout=1.0, max_waiting=10)
    try:
        load = Load(pool, statement="SELECT pg_sleep(0.3)")
        load.burst(40)
        stats = pool.stats().pool
        kinds = {type(exc) for exc in load.errors}
        row(
            "burst of 10x max_size",
            load.failed,
            0.0,
            ok=load.ok,
            rejected=stats.requests_rejected,
            timeouts=stats.timeouts,
        )
        assert kinds <= {PoolTimeout, TooManyRequests}
        assert stats.requests_rejected + stats.timeouts == load.failed
        assert stats.requests_rejected >= 1 and load.ok >= 4
        assert max(load.waits) < 1.0 + 1.0
        assert_clean(load, cluster)
    finally:
        pool.close()
