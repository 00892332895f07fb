"""TimedPool and AsyncTimedPool: psycopg_pool pools whose every statement is timed.

The pools are psycopg_pool's own (``pool.pool``); perfkit adds a ``configure`` step that
installs timed cursor factories on each new connection, a checkout that never hands out
a connection it has reason to think dead (see ``_watch.py``: no round trip in the steady
state), and counts of acquisitions that timed out or were refused.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from time import monotonic
from types import TracebackType
from typing import Annotated, Any, Self

import msgspec
from psycopg import AsyncConnection, Connection, OperationalError
from psycopg.abc import Params, Query
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout, TooManyRequests
from psycopg_pool.base import AttemptWithBackoff

from perfkit._errors import ConfigError
from perfkit._stat_kinds import CounterField, DurationField, GaugeField
from perfkit.queries._cursor import timed_cursor_class
from perfkit.queries._stats import QueryStats, QueryStatsSnapshot, sql_text
from perfkit.queries._watch import ConnectionWatch
from perfkit.settings import Settings

__all__ = ["AsyncTimedPool", "PoolStats", "TimedPool", "TimedPoolStats"]

_names = itertools.count(1)


class PoolStats(msgspec.Struct, frozen=True, kw_only=True):
    """A pool's connections and acquisitions (psycopg_pool's counters plus perfkit's)."""

    name: str
    min_size: Annotated[int, GaugeField("The pool's minimum number of connections.")]
    max_size: Annotated[int, GaugeField("The pool's maximum number of connections.")]
    size: Annotated[int, GaugeField("Connections open now.", name="connections_open")]
    idle: Annotated[int, GaugeField("Open connections not in use.", name="connections_idle")]
    in_use: Annotated[int, GaugeField("Connections lent out now.", name="connections_in_use")]
    waiting: Annotated[int, GaugeField("Requests waiting for a connection now.")]
    utilization_pct: Annotated[
        float, GaugeField("Connections in use over max_size (0..1).", name="utilization_ratio",
                          scale=0.01, mode="mean"),
    ]  # fmt: skip
    requests: Annotated[int, CounterField("Connections requested from the pool.")]
    requests_queued: Annotated[int, CounterField("Requests that had to wait for a connection.")]
    requests_errors: Annotated[int, CounterField("Requests that got no connection.")]
    requests_rejected: Annotated[
        int, CounterField("Requests refused at once: too many were waiting already.")
    ] = 0
    timeouts: Annotated[int, CounterField("Requests that timed out waiting for a connection.")]
    acquire_wait_ms: Annotated[
        int, CounterField("Time spent waiting for a connection.", name="acquire_wait_seconds",
                          scale=0.001),
    ]  # fmt: skip
    acquire_wait_mean_ms: Annotated[
        float, DurationField("Mean wait for a connection.", name="acquire_wait_mean_seconds",
                             mode="mean"),
    ]  # fmt: skip
    usage_ms: Annotated[
        int, CounterField("Time connections were lent out.", name="usage_seconds", scale=0.001)
    ]
    connections: Annotated[int, CounterField("Connections opened.", name="connections_opened")]
    connections_ms: Annotated[
        int, CounterField("Time spent opening connections.", name="connect_seconds",
                          scale=0.001),
    ]  # fmt: skip
    connection_errors: Annotated[int, CounterField("Connection attempts that failed.")]
    connections_lost: Annotated[int, CounterField("Connections found broken and dropped.")]
    returns_bad: Annotated[int, CounterField("Connections returned in a bad state.")]
    connections_verified: Annotated[
        int, CounterField("Suspect connections checked with a round trip before use.")
    ] = 0
    connections_replaced: Annotated[
        int, CounterField("Suspect connections found dead and replaced before use.")
    ] = 0
    statements_retried: Annotated[
        int, CounterField("Retry-safe statements run again on a fresh connection.")
    ] = 0


class TimedPoolStats(msgspec.Struct, frozen=True, kw_only=True):
    """What ``pool.get_stats()`` returns: the pool, and the statements run through it."""

    pool: PoolStats
    queries: QueryStatsSnapshot


def psycopg_pool_stats(
    name: str,
    pool: ConnectionPool[Any] | AsyncConnectionPool[Any],
    *,
    uncounted_requests: int = 0,
    **perfkit_counters: int,
) -> PoolStats:
    """A psycopg_pool pool's counters as :class:`PoolStats` (``TimedPool`` and Django's pool);
    ``perfkit_counters`` are the fields psycopg_pool does not count, and
    ``uncounted_requests`` checkouts it counted that are not requests of the app's."""
    raw = pool.get_stats()
    size = raw.get("pool_size", 0)
    idle = raw.get("pool_available", 0)
    in_use = max(size - idle, 0)
    requests = raw.get("requests_num", 0) - uncounted_requests
    wait_ms = raw.get("requests_wait_ms", 0)
    return PoolStats(
        name=name,
        min_size=raw.get("pool_min", 0),
        max_size=raw.get("pool_max", 0),
        size=size,
        idle=idle,
        in_use=in_use,
        waiting=raw.get("requests_waiting", 0),
        utilization_pct=100.0 * in_use / pool.max_size if pool.max_size else 0.0,
        requests=requests,
        requests_queued=raw.get("requests_queued", 0),
        requests_errors=raw.get("requests_errors", 0),
        timeouts=perfkit_counters.pop("timeouts", 0),
        acquire_wait_ms=wait_ms,
        acquire_wait_mean_ms=wait_ms / requests if requests else 0.0,
        usage_ms=raw.get("usage_ms", 0),
        connections=raw.get("connections_num", 0),
        connections_ms=raw.get("connections_ms", 0),
        connection_errors=raw.get("connections_errors", 0),
        connections_lost=raw.get("connections_lost", 0),
        returns_bad=raw.get("returns_bad", 0),
        **perfkit_counters,
    )


def _check_sizes(
    min_size: int, max_size: int, max_idle: float, timeout: float, max_waiting: int
) -> None:
    if min_size < 0:
        raise ConfigError(f"min_size={min_size!r} must be >= 0 (DB_POOL_MIN)")
    if max_size < max(1, min_size):
        raise ConfigError(
            f"max_size={max_size!r} must be >= 1 and >= min_size={min_size!r} (DB_POOL_MAX)"
        )
    if max_idle <= 0:
        raise ConfigError(f"max_idle={max_idle!r} must be > 0 (DB_POOL_IDLE_TIMEOUT)")
    if timeout <= 0:
        raise ConfigError(f"timeout={timeout!r} must be > 0 (DB_POOL_TIMEOUT)")
    if max_waiting < 0:
        raise ConfigError(f"max_waiting={max_waiting!r} must be >= 0 (DB_POOL_MAX_WAITING)")


def _with_statement_timeout(conninfo: str, seconds: float | None) -> str:
    """``conninfo`` whose sessions start with ``statement_timeout`` set (no round trip:
    it travels in the startup packet's ``options``, after any options already there)."""
    if seconds is None:
        return conninfo
    if seconds <= 0:
        raise ConfigError(f"statement_timeout={seconds!r} must be > 0 (DB_STATEMENT_TIMEOUT)")
    options = conninfo_to_dict(conninfo).get("options") or ""
    milliseconds = max(1, round(seconds * 1000))
    return make_conninfo(conninfo, options=f"{options} -c statement_timeout={milliseconds}".strip())


def _env_arguments(environ: Mapping[str, str] | None) -> tuple[str, dict[str, Any]]:
    settings = Settings.from_env(environ)
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is not set: the pool has no database to connect to")
    arguments: dict[str, Any] = {
        "min_size": settings.db_pool_min,
        "max_size": settings.db_pool_max,
        "max_idle": settings.db_pool_idle_timeout,
        "timeout": settings.db_pool_timeout,
        "max_waiting": settings.db_pool_max_waiting,
        "statement_timeout": settings.db_statement_timeout,
        "stats": QueryStats(slow_query_ms=settings.slow_query_ms),
    }
    return settings.database_url, arguments


# The longest pause between two attempts to reconnect to a server that is down.
# psycopg_pool doubles it without bound (1, 2, 4, 8 s ...): after a 10 s outage the pool
# could stay empty for 5 s more with the server back. Refused connections are cheap.
RECONNECT_MAX_DELAY = 1.0


class _Reconnect(AttemptWithBackoff):
    """psycopg_pool's reconnection backoff, capped at :data:`RECONNECT_MAX_DELAY` and at
    half the pool's ``timeout``: a request that waits for a connection while the server
    comes back sees a reconnection attempt before it gives up."""

    def __init__(self, *, timeout: float, pool_timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.max_delay = min(RECONNECT_MAX_DELAY, pool_timeout / 2)

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, self.max_delay)


class _WatchedPool(ConnectionPool[Any]):
    """psycopg_pool's pool, whose checkout verifies or replaces suspect connections."""

    def __init__(self, *args: Any, watch: ConnectionWatch, **kwargs: Any) -> None:
        self.watch = watch
        super().__init__(*args, **kwargs)

    # getconn and putconn are the hot path: the base class is named, not found by super().
    def getconn(self, timeout: float | None = None) -> Any:
        try:
            conn = ConnectionPool.getconn(self, timeout)
            if self.watch.suspect(conn):
                conn = self._live(conn, timeout)
            return conn
        except TooManyRequests:
            self.watch.count_rejected()
            raise
        except PoolTimeout:
            self.watch.count_timeout()
            raise

    def _live(self, conn: Any, timeout: float | None) -> Any:
        """``conn`` if it answers a check, else the first of its successors that does."""
        deadline = monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            epoch = self.watch.epoch
            if not self.watch.must_replace(conn):
                try:
                    self.check_connection(conn)
                except Exception:  # noqa: S110 (dead: replaced below)
                    pass
                else:
                    self.watch.verified_good(conn, epoch)
                    return conn
            # Closed before it goes back, so that the pool opens a new one in its place.
            self.watch.found_dead(conn, replaced=True)
            conn.close()
            self.putconn(conn)
            conn = super().getconn(max(deadline - monotonic(), 0.0))
            if not self.watch.suspect(conn):
                return conn

    def putconn(self, conn: Any) -> None:
        conn._pk_idle_since = monotonic()  # idle from now: see ConnectionWatch.suspect
        ConnectionPool.putconn(self, conn)

    # psycopg_pool's own (private) step that connects and reschedules itself on failure:
    # the one place its backoff can be given. tests/faults' stop-and-start row checks it.
    def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        if attempt is None:
            attempt = _Reconnect(timeout=self.reconnect_timeout, pool_timeout=self.timeout)
        super()._add_connection(attempt, growing)


class _AsyncWatchedPool(AsyncConnectionPool[Any]):
    """The asyncio twin of :class:`_WatchedPool`."""

    def __init__(self, *args: Any, watch: ConnectionWatch, **kwargs: Any) -> None:
        self.watch = watch
        super().__init__(*args, **kwargs)

    async def getconn(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (psycopg_pool's API)
        try:
            conn = await AsyncConnectionPool.getconn(self, timeout)
            if self.watch.suspect(conn):
                conn = await self._live(conn, timeout)
            return conn
        except TooManyRequests:
            self.watch.count_rejected()
            raise
        except PoolTimeout:
            self.watch.count_timeout()
            raise

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
            self.watch.found_dead(conn, replaced=True)
            await conn.close()
            await self.putconn(conn)
            conn = await super().getconn(max(deadline - monotonic(), 0.0))
            if not self.watch.suspect(conn):
                return conn

    async def putconn(self, conn: Any) -> None:
        conn._pk_idle_since = monotonic()  # idle from now: see ConnectionWatch.suspect
        await AsyncConnectionPool.putconn(self, conn)

    async def _add_connection(
        self, attempt: AttemptWithBackoff | None, growing: bool = False
    ) -> None:
        if attempt is None:
            attempt = _Reconnect(timeout=self.reconnect_timeout, pool_timeout=self.timeout)
        await super()._add_connection(attempt, growing)


class BaseTimedPool:
    """What the sync and async pools share: stats, cursor classes, configuration."""

    pool: ConnectionPool[Any] | AsyncConnectionPool[Any]
    _pool_class: type[_WatchedPool] | type[_AsyncWatchedPool]

    def __init__(
        self,
        conninfo: str = "",
        *,
        stats: QueryStats | None = None,
        min_size: int = 2,
        max_size: int = 20,
        max_idle: float = 30.0,
        timeout: float = 30.0,
        max_waiting: int = 0,
        statement_timeout: float | None = None,
        name: str | None = None,
        open: bool = False,
        configure: Callable[[Any], Any] | None = None,
        **pool_kwargs: Any,
    ) -> None:
        _check_sizes(min_size, max_size, max_idle, timeout, max_waiting)
        self.stats = stats if stats is not None else QueryStats()
        self.name = name or f"perfkit-pool-{next(_names)}"
        self._cursor_classes: dict[type[Any], type[Any]] = {}
        self._watch = ConnectionWatch()
        self._configure_first = configure
        self.pool = self._pool_class(
            _with_statement_timeout(conninfo, statement_timeout),
            watch=self._watch,
            min_size=min_size,
            max_size=max_size,
            max_idle=max_idle,
            timeout=timeout,
            max_waiting=max_waiting,
            name=self.name,
            open=open,
            configure=self._configure,
            **pool_kwargs,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """A pool configured from DATABASE_URL, DB_POOL_* and SLOW_QUERY_MS.

        Keyword arguments override those settings or reach psycopg_pool's pool.
        """
        conninfo, arguments = _env_arguments(environ)
        return cls(conninfo, **(arguments | overrides))

    def _configure(self, conn: Any) -> Any:
        raise NotImplementedError

    def _instrument(self, conn: Connection[Any] | AsyncConnection[Any]) -> None:
        """Swap the connection's cursor factories for timed subclasses of them, and start
        watching it."""
        conn.cursor_factory = self._timed(conn.cursor_factory)
        conn.server_cursor_factory = self._timed(conn.server_cursor_factory)
        self._watch.stamp(conn)

    def _timed(self, base: type[Any]) -> type[Any]:
        found = self._cursor_classes.get(base)
        if found is None:
            found = timed_cursor_class(base, self.stats, self.name, self._watch.statement_failed)
            found = self._cursor_classes.setdefault(base, found)
        return found

    def get_stats(self, top: int | None = None) -> TimedPoolStats:
        """Pool and statement statistics (``top`` cuts the per-fingerprint list)."""
        watch = self._watch
        pool = psycopg_pool_stats(
            self.name,
            self.pool,
            # A checkout that replaced a dead connection asked psycopg_pool again: one request.
            uncounted_requests=watch.replaced,
            requests_rejected=watch.rejected,
            timeouts=watch.timeouts,
            connections_verified=watch.verified,
            connections_replaced=watch.replaced,
            statements_retried=watch.retried,
        )
        return TimedPoolStats(pool=pool, queries=self.stats.get_stats(top))

    def reset_stats(self) -> None:
        """Zero the pool's counters and the statement stats (shared by every pool using them)."""
        self.pool.pop_stats()
        self._watch.reset()
        self.stats.reset()

    @property
    def closed(self) -> bool:
        """True once the pool is closed (or before it is opened)."""
        return self.pool.closed

    @property
    def min_size(self) -> int:
        """Connections kept open even when idle."""
        return self.pool.min_size

    @property
    def max_size(self) -> int:
        """Most connections the pool will open."""
        return self.pool.max_size


class TimedPool(BaseTimedPool):
    """A ``psycopg_pool.ConnectionPool`` whose connections time every statement.

    :param conninfo: a libpq conninfo string or ``postgresql://`` URL.
    :param stats: where statements are recorded (shareable); a new one by default.
    :param min_size: connections kept open (``DB_POOL_MIN``).
    :param max_size: most connections (``DB_POOL_MAX``).
    :param max_idle: seconds an extra connection may stay idle (``DB_POOL_IDLE_TIMEOUT``).
    :param timeout: seconds to wait for a connection before ``PoolTimeout`` (``DB_POOL_TIMEOUT``).
    :param max_waiting: requests that may wait for a connection at once; one more is refused
        at once with ``TooManyRequests`` (``DB_POOL_MAX_WAITING``; 0: no limit).
    :param statement_timeout: seconds a statement may run before the server cancels it
        (``QueryCanceled``; ``DB_STATEMENT_TIMEOUT``; None: the server's setting).
    :param configure: run on each new connection, before perfkit installs its cursors.
    :param pool_kwargs: passed to ``ConnectionPool`` unchanged (``check``, ``kwargs``,
        ``reconnect_timeout``, ``max_lifetime``, ``connection_class``, ...).
    """

    pool: ConnectionPool[Any]
    _pool_class = _WatchedPool

    def _configure(self, conn: Connection[Any]) -> None:
        if self._configure_first is not None:
            self._configure_first(conn)
        self._instrument(conn)

    def open(self, wait: bool = False, timeout: float = 30.0) -> None:
        """Open the pool (start connecting); with ``wait``, until ``min_size`` are ready."""
        self.pool.open(wait=wait, timeout=timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Close the pool and its connections."""
        self.pool.close(timeout=timeout)

    def wait(self, timeout: float = 30.0) -> None:
        """Wait until ``min_size`` connections are ready (``PoolTimeout`` otherwise)."""
        self.pool.wait(timeout=timeout)

    def connection(self, timeout: float | None = None) -> AbstractContextManager[Connection[Any]]:
        """``with pool.connection() as conn:`` — a connection whose statements are timed."""
        return self.pool.connection(timeout)

    def getconn(self, timeout: float | None = None) -> Connection[Any]:
        """Take a connection; give it back with :meth:`putconn`."""
        conn: Connection[Any] = self.pool.getconn(timeout)
        return conn

    def putconn(self, conn: Connection[Any]) -> None:
        """Give back a connection taken with :meth:`getconn`."""
        self.pool.putconn(conn)

    def fetch(
        self,
        query: Query,
        params: Params | None = None,
        *,
        row_factory: Any = None,
        retry_safe: bool | None = None,
        timeout: float | None = None,
    ) -> list[Any]:
        """Run one statement on a pooled connection and return its rows (``[]`` if none).

        If the connection dies under the statement, it runs once more on a fresh
        connection when that is safe: a read-only statement (``SELECT`` ... without
        writes or row locks), or any with ``retry_safe=True``; ``retry_safe=False`` never.
        """
        retried = False
        while True:
            with self.connection(timeout) as conn:
                cursor = conn.cursor(row_factory=row_factory) if row_factory else conn.cursor()
                try:
                    cursor.execute(query, params)  # type: ignore[arg-type]
                    return cursor.fetchall() if cursor.description is not None else []
                except OperationalError:
                    text = sql_text(query, conn)
                    if retried or not self._watch.may_retry(conn, text, retry_safe):
                        raise
            retried = True

    def check(self) -> None:
        """Check the idle connections, replacing broken ones."""
        self.pool.check()

    def resize(self, min_size: int, max_size: int | None = None) -> None:
        """Change the pool's size limits."""
        self.pool.resize(min_size, max_size)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncTimedPool(BaseTimedPool):
    """The asyncio twin of :class:`TimedPool`, wrapping ``AsyncConnectionPool``.

    Same parameters; ``configure`` is a coroutine function. Open it with
    ``await pool.open()`` or ``async with pool:`` (``open=True`` is deprecated by
    psycopg_pool for async pools).
    """

    pool: AsyncConnectionPool[Any]
    _pool_class = _AsyncWatchedPool

    async def _configure(self, conn: AsyncConnection[Any]) -> None:
        if self._configure_first is not None:
            await self._configure_first(conn)
        self._instrument(conn)

    async def open(self, wait: bool = False, timeout: float = 30.0) -> None:  # noqa: ASYNC109 (psycopg_pool's API)
        """Open the pool (start connecting); with ``wait``, until ``min_size`` are ready."""
        await self.pool.open(wait=wait, timeout=timeout)

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (psycopg_pool's API)
        """Close the pool and its connections."""
        await self.pool.close(timeout=timeout)

    async def wait(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 (psycopg_pool's API)
        """Wait until ``min_size`` connections are ready (``PoolTimeout`` otherwise)."""
        await self.pool.wait(timeout=timeout)

    def connection(
        self, timeout: float | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        """``async with pool.connection() as conn:`` — statements on it are timed."""
        return self.pool.connection(timeout)

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
        """Run one statement on a pooled connection and return its rows (``[]`` if none);
        retried once on a fresh connection as :meth:`TimedPool.fetch` says."""
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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
