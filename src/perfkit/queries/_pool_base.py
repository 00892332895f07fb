"""What TimedPool and AsyncTimedPool share: their stats, configuration and base class.

The pools are psycopg_pool's own (``pool.pool``); perfkit adds a ``configure`` step that
installs timed cursor factories on each new connection, a checkout that never hands out
a connection it has reason to think dead (see ``_watch.py``: no round trip in the steady
state), and counts of acquisitions that timed out or were refused. The I/O lives in
``_pool_async.py`` and in ``_pool.py``, generated from it by ``tools/async_to_sync.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Self, TypeVar

import msgspec
from psycopg import (
    AsyncConnection,
    AsyncCursor,
    AsyncServerCursor,
    Connection,
    Cursor,
    ServerCursor,
)
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from perfkit._errors import ConfigError
from perfkit._stat_kinds import CounterField, DurationField, GaugeField
from perfkit.queries._cursor import TimedCursor, TimedServerCursor
from perfkit.queries._cursor_async import AsyncTimedCursor, AsyncTimedServerCursor
from perfkit.queries._cursor_base import ErrorHook, _ClientTiming, _Timing
from perfkit.queries._explain_base import ExplainSettings, PlanExplainer, PlanSampler
from perfkit.queries._stats import QueryStats, QueryStatsSnapshot
from perfkit.queries._watch import ConnectionWatch
from perfkit.settings import Settings

__all__ = ["BaseTimedPool", "PoolStats", "TimedPoolStats"]

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
    """What ``pool.stats()`` returns: the pool, and the statements run through it."""

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
    settings = Settings.from_env(environ, part="queries")
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is not set: the pool has no database to connect to")
    arguments: dict[str, Any] = {
        "min_size": settings.db_pool_min,
        "max_size": settings.db_pool_max,
        "max_idle": settings.db_pool_idle_timeout,
        "timeout": settings.db_pool_timeout,
        "max_waiting": settings.db_pool_max_waiting,
        "statement_timeout": settings.db_statement_timeout,
        "query_stats": QueryStats(slow_query_ms=settings.slow_query_ms),
        "explain": settings.db_explain
        and ExplainSettings(
            per_minute=settings.db_explain_per_minute,
            interval=settings.db_explain_interval,
            timeout=settings.db_explain_timeout,
            analyze=settings.db_explain_analyze,
        ),
    }
    return settings.database_url, arguments


# The longest pause between two attempts to reconnect to a server that is down.
# psycopg_pool doubles it without bound (1, 2, 4, 8 s ...): after a 10 s outage the pool
# could stay empty for 5 s more with the server back. Refused connections are cheap.
RECONNECT_MAX_DELAY = 1.0


# Most specific first: a ServerCursor is also a Cursor.
_TIMED_BASES: tuple[tuple[type[Any], type[_Timing]], ...] = (
    (ServerCursor, TimedServerCursor),
    (AsyncServerCursor, AsyncTimedServerCursor),
    (Cursor, TimedCursor),
    (AsyncCursor, AsyncTimedCursor),
)

C = TypeVar("C", bound=type)


def timed_cursor_class(
    base: C, stats: QueryStats, pool: str, on_error: ErrorHook | None = None
) -> C:
    """A subclass of cursor class ``base`` that records into ``stats`` under ``pool`` and
    calls ``on_error(connection, exception)`` when a statement raises."""
    while issubclass(base, _Timing):  # already timed (by another pool): time the original
        base = next(b for b in base.__mro__ if not issubclass(b, _Timing))  # type: ignore[assignment]
    timed = next(t for plain, t in _TIMED_BASES if issubclass(base, plain))
    namespace: dict[str, Any] = {
        "_pk_stats": stats,
        "_pk_pool": pool,
        "_pk_on_error": staticmethod(on_error) if on_error is not None else None,
        "__module__": __name__,
    }
    if issubclass(timed, _ClientTiming):
        namespace["__slots__"] = ()
    bases = (timed,) if base in timed.__mro__ else (timed, base)
    cls = type(f"Timed{base.__name__}", bases, namespace)
    if issubclass(timed, _ClientTiming):
        cls._pk_execute = staticmethod(super(timed, cls).execute)  # type: ignore[attr-defined, misc]
    return cls  # type: ignore[return-value]


class BaseTimedPool:
    """What the sync and async pools share: stats, cursor classes, configuration."""

    pool: ConnectionPool[Any] | AsyncConnectionPool[Any]
    # The psycopg_pool subclass the twin's checkout runs through (it takes ``watch=``).
    _pool_class: Callable[..., ConnectionPool[Any] | AsyncConnectionPool[Any]]
    # The twin's explainer class (a thread's, or a task's), for ``explain=``.
    _explainer_class: Callable[[str, PlanSampler], PlanExplainer]

    def __init__(
        self,
        conninfo: str = "",
        *,
        query_stats: QueryStats | None = None,
        min_size: int = 2,
        max_size: int = 20,
        max_idle: float = 30.0,
        timeout: float = 30.0,
        max_waiting: int = 0,
        statement_timeout: float | None = None,
        name: str | None = None,
        open: bool = False,
        configure: Callable[[Any], Any] | None = None,
        explain: ExplainSettings | bool = False,
        **pool_kwargs: Any,
    ) -> None:
        _check_sizes(min_size, max_size, max_idle, timeout, max_waiting)
        # The statement recorder (shareable by several pools); stats() reports it.
        self.query_stats = query_stats if query_stats is not None else QueryStats()
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
        # EXPLAINs of slow statements, on a connection of their own (docs/queries.md).
        self.explainer: PlanExplainer | None = None
        if explain is not False:
            sampler = self.query_stats.plan_sampler(explain if explain is not True else None)
            self.explainer = self._explainer_class(conninfo, sampler)
            sampler.attach(self.name, self.explainer)

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
            found = timed_cursor_class(
                base, self.query_stats, self.name, self._watch.statement_failed
            )
            found = self._cursor_classes.setdefault(base, found)
        return found

    def stats(self, top: int | None = None) -> TimedPoolStats:
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
        return TimedPoolStats(pool=pool, queries=self.query_stats.stats(top))

    def reset_stats(self) -> None:
        """Zero the pool's counters and the statement stats (shared by every pool using them)."""
        self.pool.pop_stats()
        self._watch.reset()
        self.query_stats.reset()

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
