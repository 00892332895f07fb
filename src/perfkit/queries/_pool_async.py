"""AsyncTimedPool: psycopg_pool's AsyncConnectionPool whose every statement is timed.

The source of ``_pool.py`` (TimedPool), generated from this file by ``tools/async_to_sync.py``:
edit this one, then run that script. What needs no I/O lives in ``_pool_base.py``.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from time import monotonic
from typing import Any, Self

from psycopg import AsyncConnection, OperationalError
from psycopg.abc import Params, Query
from psycopg_pool import AsyncConnectionPool, PoolTimeout, TooManyRequests

from perfkit import _telemetry
from perfkit._compat import psycopg_pool as pool_compat
from perfkit.queries._explain_async import AsyncExplainer
from perfkit.queries._pool_base import RECONNECT_MAX_DELAY, BaseTimedPool
from perfkit.queries._stats import sql_text
from perfkit.queries._watch import POLL_AFTER_IDLE, ConnectionWatch

__all__ = ["AsyncTimedPool"]


class _AsyncCheckout:
    """``async with pool.connection() as conn``: psycopg_pool's ``connection()`` as a plain
    class, the same steps (getconn, the connection's own ``async with``, putconn, the usage
    time), without the generator-based context manager: dropping it saved a checkout
    about 6,800 CPU instructions (callgrind, CPython 3.11)."""

    __slots__ = ("_conn", "_pool", "_timeout")

    def __init__(self, pool: _AsyncWatchedPool, timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout

    async def __aenter__(self) -> AsyncConnection[Any]:
        conn = self._conn = await self._pool.getconn(self._timeout)
        try:
            return await conn.__aenter__()  # type: ignore[no-any-return]
        except BaseException:
            await self._pool.putconn(conn)
            raise

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # Three arguments, not *exc_info: a tuple packed and unpacked on every checkout
        # cost ~2,600 instructions (benchmarks/instructions_queries.py).
        pool, conn = self._pool, self._conn
        try:
            await conn.__aexit__(exc_type, exc, tb)
        finally:
            await pool.putconn(conn)
            # getconn stamped _pk_taken when it handed the connection out: psycopg_pool's t0.
            pool_compat.add_usage_ms(pool, int(1000.0 * (monotonic() - conn._pk_taken)))


class _AsyncWatchedPool(pool_compat.CappedReconnect, AsyncConnectionPool[Any]):
    """psycopg_pool's pool, whose checkout verifies or replaces suspect connections."""

    def __init__(self, *args: Any, watch: ConnectionWatch, **kwargs: Any) -> None:
        self.watch = watch
        super().__init__(*args, **kwargs)

    @property
    def reconnect_max_delay(self) -> float:
        """The longest pause between reconnection attempts (pool_compat.CappedReconnect):
        a request that waits for a connection while the server comes back sees an attempt
        before it gives up."""
        return min(RECONNECT_MAX_DELAY, self.timeout / 2)

    def connection(  # type: ignore[override]
        self, timeout: float | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        if pool_compat.INTERNALS:
            return _AsyncCheckout(self, timeout)
        return super().connection(timeout)  # psycopg_pool's: it counts usage_ms itself

    # getconn is the hot path: the base class is named, not found by super(), and the cheap
    # half of ConnectionWatch.suspect is tested inline. The telemetry hook db_connection
    # (perfkit.otel's metrics) is read once per call: off, it costs a None check.
    async def getconn(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (psycopg_pool's API)
        hook = _telemetry.db_connection
        start = monotonic() if hook is not None else 0.0
        try:
            conn = await AsyncConnectionPool.getconn(self, timeout)
            now = monotonic()
            watch = self.watch
            if (
                conn._pk_epoch != watch.epoch or now - conn._pk_taken > POLL_AFTER_IDLE
            ) and watch.suspect(conn, now):
                conn = await self._live(conn, timeout)
            conn._pk_taken = now
            if hook is not None:
                hook("wait", self.name, monotonic() - start)
            return conn
        except TooManyRequests:
            self.watch.count_rejected()
            raise
        except PoolTimeout:
            self.watch.count_timeout()
            raise

    async def putconn(self, conn: Any) -> None:
        hook = _telemetry.db_connection
        # A connection of another pool has no stamp: psycopg_pool refuses it below.
        if hook is not None and hasattr(conn, "_pk_taken"):
            hook("use", self.name, monotonic() - conn._pk_taken)
        await AsyncConnectionPool.putconn(self, conn)

    async def _connect(self, *args: Any, **kwargs: Any) -> Any:
        # psycopg_pool's private connect (and configure) step: the one place a new
        # connection's creation time is known (pool_compat.INTERNALS pins the releases).
        hook = _telemetry.db_connection
        if hook is None or not pool_compat.INTERNALS:
            return await super()._connect(*args, **kwargs)
        start = monotonic()
        conn = await super()._connect(*args, **kwargs)
        hook("create", self.name, monotonic() - start)
        return conn

    async def _live(self, conn: Any, timeout: float | None) -> Any:  # noqa: ASYNC109
        """``conn`` if it answers a check, else the first of its successors that does."""
        deadline = monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            epoch = self.watch.epoch
            if not self.watch.must_replace(conn):
                try:
                    await self.check_connection(conn)
                except Exception:  # noqa: S110 (dead: replaced below)
                    pass
                else:
                    self.watch.verified_good(conn, epoch)
                    return conn
            # Closed before it goes back, so that the pool opens a new one in its place.
            self.watch.found_dead(conn, replaced=True)
            await conn.close()
            await AsyncConnectionPool.putconn(self, conn)  # never lent out: no use time
            conn = await super().getconn(max(deadline - monotonic(), 0.0))
            if not self.watch.suspect(conn, monotonic()):
                return conn


class AsyncTimedPool(BaseTimedPool):
    """A psycopg_pool ``AsyncConnectionPool`` whose connections time every statement.

    :param conninfo: a libpq conninfo string or ``postgresql://`` URL.
    :param query_stats: where statements are recorded (shareable; the pool's
        ``query_stats`` attribute); a new one by default.
    :param min_size: connections kept open (``DB_POOL_MIN``).
    :param max_size: most connections (``DB_POOL_MAX``).
    :param max_idle: seconds an extra connection may stay idle (``DB_POOL_IDLE_TIMEOUT``).
    :param timeout: seconds to wait for a connection before ``PoolTimeout`` (``DB_POOL_TIMEOUT``).
    :param max_waiting: requests that may wait for a connection at once; one more is refused
        at once with ``TooManyRequests`` (``DB_POOL_MAX_WAITING``; 0: no limit).
    :param statement_timeout: seconds a statement may run before the server cancels it
        (``QueryCanceled``; ``DB_STATEMENT_TIMEOUT``; None: the server's setting).
    :param configure: run (awaited, in the async pool) on each new connection, before perfkit
        installs its cursors.
    :param explain: ``True`` or an ``ExplainSettings``: EXPLAIN slow statements, within a
        budget, on a connection of their own (``DB_EXPLAIN``; docs/queries.md).
    :param pool_kwargs: passed to ``AsyncConnectionPool`` unchanged (``check``, ``kwargs``,
        ``reconnect_timeout``, ``max_lifetime``, ``connection_class``, ...).

    Open it with ``async with pool:`` or ``await pool.open()``.
    """

    pool: _AsyncWatchedPool
    explainer: AsyncExplainer | None
    _pool_class = _AsyncWatchedPool
    _explainer_class = AsyncExplainer

    async def _configure(self, conn: AsyncConnection[Any]) -> None:
        if self._configure_first is not None:
            await self._configure_first(conn)
        self._instrument(conn)

    async def open(self, wait: bool = False, timeout: float = 30.0) -> None:  # noqa: ASYNC109 (psycopg_pool's API)
        """Open the pool (start connecting); with ``wait``, until ``min_size`` are ready."""
        await self.pool.open(wait=wait, timeout=timeout)

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (psycopg_pool's API)
        """Close the pool and its connections (and wait for an EXPLAIN running)."""
        if self.explainer is not None:
            self.query_stats.plan_sampler().detach(self.name)
            await self.explainer.close(timeout)
        await self.pool.close(timeout=timeout)

    async def wait(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 (psycopg_pool's API)
        """Wait until ``min_size`` connections are ready (``PoolTimeout`` otherwise)."""
        await self.pool.wait(timeout=timeout)

    def connection(
        self, timeout: float | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        """``async with pool.connection() as conn:`` — a connection whose statements are timed."""
        return _AsyncCheckout(self.pool, timeout)

    async def getconn(self, timeout: float | None = None) -> AsyncConnection[Any]:  # noqa: ASYNC109 (psycopg_pool's API)
        """Take a connection; give it back with :meth:`putconn`."""
        conn: AsyncConnection[Any] = await self.pool.getconn(timeout)
        return conn

    async def putconn(self, conn: AsyncConnection[Any]) -> None:
        """Give back a connection taken with :meth:`getconn`."""
        await self.pool.putconn(conn)

    async def fetch(
        self,
        query: Query,
        params: Params | None = None,
        *,
        row_factory: Any = None,
        retry_safe: bool | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the pool's wait, as connection())
    ) -> list[Any]:
        """Run one statement on a pooled connection and return its rows (``[]`` if none).

        If the connection dies under the statement, it runs once more on a fresh
        connection when that is safe: a read-only statement (``SELECT`` ... without
        writes or row locks), or any with ``retry_safe=True``; ``retry_safe=False`` never.
        """
        retried = False
        while True:
            async with self.connection(timeout) as conn:
                cursor = conn.cursor(row_factory=row_factory) if row_factory else conn.cursor()
                try:
                    await cursor.execute(query, params)  # type: ignore[arg-type]
                    return await cursor.fetchall() if cursor.description is not None else []
                except OperationalError:
                    text = sql_text(query, conn)
                    if retried or not self._watch.may_retry(conn, text, retry_safe):
                        raise
            retried = True

    async def check(self) -> None:
        """Check the idle connections, replacing broken ones."""
        await self.pool.check()

    async def resize(self, min_size: int, max_size: int | None = None) -> None:
        """Change the pool's size limits."""
        await self.pool.resize(min_size, max_size)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
