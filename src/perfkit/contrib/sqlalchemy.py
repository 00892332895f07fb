"""Statement timing for SQLAlchemy 2 engines, sync and asyncio (docs/sqlalchemy.md).

:func:`instrument` listens to the engine's cursor execution events and records every
statement into a :class:`~perfkit.queries.QueryStats`: the same fingerprints, percentiles and
slow-query log as perfkit's own pools (parameter values are never recorded), plus the
engine's pool counters as a :class:`~perfkit.queries.PoolStats`.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from perfkit._compat.sqlalchemy import max_overflow
from perfkit._errors import ConfigError
from perfkit.queries import ExplainSettings, PoolStats, QueryStats, TimedPoolStats
from perfkit.queries._explain import Explainer
from perfkit.queries._explain_base import conninfo_of_connection
from perfkit.settings import Settings

__all__ = ["EngineInstrumentation", "instrument"]

# Where a connection keeps the start times of its statements in flight (a stack: a
# statement's events may nest another's, as in an ORM flush inside a listener).
_STARTED = "perfkit.started"
_names = itertools.count(1)


class EngineInstrumentation:
    """The statistics of one instrumented engine; :func:`instrument` returns it."""

    def __init__(self, engine: Engine, query_stats: QueryStats, name: str) -> None:
        self.engine = engine
        # The statement recorder (shareable); stats() reports it with the pool.
        self.query_stats = query_stats
        self.name = name
        self._lock = threading.Lock()
        self._checkouts = 0
        self._connects = 0
        # explain(): the settings until the next checkout gives a connection to copy.
        self._explain_settings: ExplainSettings | None = None
        self.explainer: Explainer | None = None
        self._listeners: list[tuple[Any, str, Any]] = [
            (engine, "before_cursor_execute", self._before),
            (engine, "after_cursor_execute", self._after),
            (engine, "handle_error", self._failed),
            (engine.pool, "checkout", self._checkout),
            (engine.pool, "connect", self._connect),
        ]
        for target, name_, listener in self._listeners:
            event.listen(target, name_, listener)

    def explain(self, settings: ExplainSettings | None = None) -> None:
        """EXPLAIN the engine's slow statements (psycopg driver only), on a connection of
        their own made with the parameters of the engine's next checked-out connection
        (so an engine made with ``creator=`` is explained too; docs/queries.md)."""
        driver = self.engine.dialect.driver
        if driver not in ("psycopg", "psycopg_async"):
            raise ConfigError(
                f"explain needs SQLAlchemy's psycopg driver (postgresql+psycopg), not {driver!r}"
            )
        self._explain_settings = settings or ExplainSettings()

    def _start_explaining(self, dbapi_connection: Any, settings: ExplainSettings) -> None:
        driver_connection = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        sampler = self.query_stats.plan_sampler(settings)
        self.explainer = Explainer(conninfo_of_connection(driver_connection), sampler)
        sampler.attach(self.name, self.explainer)

    def remove(self) -> None:
        """Stop recording (the statistics gathered so far stay readable)."""
        for target, name, listener in self._listeners:
            if event.contains(target, name, listener):
                event.remove(target, name, listener)
        if self.explainer is not None:
            self.query_stats.plan_sampler().detach(self.name)
            self.explainer.close()

    # -- events ---------------------------------------------------------------------------

    def _before(self, conn: Connection, *_: Any) -> None:
        conn.info.setdefault(_STARTED, []).append(time.perf_counter())

    def _after(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        started = conn.info.get(_STARTED)
        if not started:
            return  # instrumented while this statement ran
        seconds = time.perf_counter() - started.pop()
        rows = getattr(cursor, "rowcount", -1)
        # The parameters reach only the plan sampler, for a slow run (never stored).
        extra = {} if executemany else {"params": parameters}
        self.query_stats.record(
            statement, seconds, rows if rows > 0 else 0, pool=self.name, **extra
        )

    def _failed(self, context: ExceptionContext) -> None:
        conn = context.connection
        started = None if conn is None else conn.info.get(_STARTED)
        if not started or context.statement is None:
            return  # not a statement (connecting, a transaction's BEGIN/COMMIT...)
        seconds = time.perf_counter() - started.pop()
        self.query_stats.record(context.statement, seconds, failed=True, pool=self.name)

    def _checkout(self, dbapi_connection: Any, *_: Any) -> None:
        with self._lock:
            self._checkouts += 1
            settings, self._explain_settings = self._explain_settings, None
        if settings is not None:
            self._start_explaining(dbapi_connection, settings)

    def _connect(self, *_: Any) -> None:
        with self._lock:
            self._connects += 1

    # -- statistics -----------------------------------------------------------------------

    def pool_stats(self) -> PoolStats:
        """The engine's pool now. SQLAlchemy's pools count less than psycopg_pool: the
        fields they do not know (waiting, wait times, timeouts...) are 0."""
        pool: Any = self.engine.pool
        size = _call(pool, "size")
        idle = _call(pool, "checkedin")
        in_use = _call(pool, "checkedout")
        max_size = size + max_overflow(pool)
        return PoolStats(
            name=self.name,
            min_size=0,
            max_size=max_size,
            size=idle + in_use,
            idle=idle,
            in_use=in_use,
            waiting=0,
            utilization_pct=100.0 * in_use / max_size if max_size else 0.0,
            requests=self._checkouts,
            requests_queued=0,
            requests_errors=0,
            timeouts=0,
            acquire_wait_ms=0,
            acquire_wait_mean_ms=0.0,
            usage_ms=0,
            connections=self._connects,
            connections_ms=0,
            connection_errors=0,
            connections_lost=0,
            returns_bad=0,
        )

    def stats(self, top: int | None = None) -> TimedPoolStats:
        """The pool and the statements run through the engine (``top`` cuts the
        per-fingerprint list), as ``TimedPool.stats()`` returns them."""
        return TimedPoolStats(pool=self.pool_stats(), queries=self.query_stats.stats(top))

    def reset_stats(self) -> None:
        """Zero the pool counters and the statement statistics."""
        with self._lock:
            self._checkouts = self._connects = 0
        self.query_stats.reset()


def _call(pool: Any, method: str) -> int:
    # NullPool, StaticPool... have no counters: they read as 0.
    found = getattr(pool, method, None)
    return int(found()) if callable(found) else 0


def instrument(
    engine: Engine | AsyncEngine,
    *,
    query_stats: QueryStats | None = None,
    name: str | None = None,
    explain: ExplainSettings | bool = False,
) -> EngineInstrumentation:
    """Time every statement ``engine`` runs (an ``AsyncEngine`` too: its sync core's events).

    ``query_stats``: the :class:`QueryStats` to record into (share one with perfkit's
    pools and the admin to see everything together; default: a new one with the
    ``SLOW_QUERY_MS`` setting). ``name``: the pool name in statistics and slow-query logs.
    ``explain`` (``True`` or
    :class:`~perfkit.queries.ExplainSettings`): EXPLAIN the slow statements
    (:meth:`EngineInstrumentation.explain`).
    """
    if isinstance(engine, AsyncEngine):
        engine = engine.sync_engine
    if not isinstance(engine, Engine):
        raise TypeError(
            f"instrument() takes a SQLAlchemy Engine or AsyncEngine, got {type(engine).__name__}"
        )
    if query_stats is None:
        query_stats = QueryStats(slow_query_ms=Settings.from_env(part="queries").slow_query_ms)
    instrumentation = EngineInstrumentation(
        engine, query_stats, name or f"sqlalchemy-{next(_names)}"
    )
    if explain is not False:
        try:
            instrumentation.explain(explain if explain is not True else None)
        except ConfigError:
            instrumentation.remove()
            raise
    return instrumentation
