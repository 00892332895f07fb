"""Django's database statements timed into a :class:`~perfkit.queries.QueryStats`.

:class:`QueryTimer` is a Django execute wrapper (see Django's "Database instrumentation");
the :mod:`app config <perfkit.contrib.django.apps>` installs it on every connection Django
opens. Statements are fingerprinted; parameter values are never recorded.
:class:`DjangoDatabase` is what a :class:`~perfkit.Perfkit` reads them through
(``Perfkit(pool=DjangoDatabase())``): the admin, the metrics and the fleet view.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created

from perfkit.queries import DatabaseStats, ExplainSettings, PoolStats, QueryStats
from perfkit.queries._explain import Explainer
from perfkit.queries._explain_base import conninfo_of
from perfkit.queries._pool_base import psycopg_pool_stats
from perfkit.settings import Settings

__all__ = [
    "DjangoDatabase",
    "QueryTimer",
    "get_query_stats",
    "install",
    "pool_stats",
    "set_query_stats",
]

_stats: list[QueryStats] = []
_stats_lock = threading.Lock()


def get_query_stats() -> QueryStats:
    """The statistics Django's statements go to: created on first use with the
    ``SLOW_QUERY_MS`` setting, unless :func:`set_query_stats` gave one."""
    with _stats_lock:
        if not _stats:
            _stats.append(QueryStats(slow_query_ms=Settings.from_env(part="queries").slow_query_ms))
        return _stats[0]


def set_query_stats(stats: QueryStats) -> None:
    """Record into ``stats`` from now on (share one with perfkit's own pools)."""
    with _stats_lock:
        _stats[:] = [stats]


class QueryTimer:
    """A Django execute wrapper recording each statement's duration, rows and failure
    under the connection's alias."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        started = time.perf_counter()
        failed = True
        try:
            result = execute(sql, params, many, context)
            failed = False
            return result
        finally:
            cursor = context.get("cursor") if isinstance(context, dict) else None
            rows = getattr(cursor, "rowcount", -1) if cursor is not None else -1
            # The parameters reach only the plan sampler, for a slow run (never stored).
            extra = {} if many else {"params": params}
            get_query_stats().record(
                sql,
                time.perf_counter() - started,
                rows if rows > 0 and not failed else 0,
                failed=failed,
                pool=self.alias,
                **extra,
            )


def _on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    wrappers = connection.execute_wrappers
    if not any(isinstance(wrapper, QueryTimer) for wrapper in wrappers):
        wrappers.append(QueryTimer(connection.alias))


def install() -> None:
    """Time the statements of every connection Django opens from now on (and of those
    already open in this thread). The app config calls this in ``ready()``."""
    connection_created.connect(_on_connection_created, dispatch_uid="perfkit.db.timer")
    for connection in connections.all(initialized_only=True):
        _on_connection_created(None, connection)


def pool_stats(alias: str = "default") -> PoolStats | None:
    """The connection pool of database ``alias`` when Django's pool is on
    (``DATABASES[alias]["OPTIONS"]["pool"]``, PostgreSQL, Django 5.1+), else None."""
    pool = getattr(connections[alias], "pool", None)
    if pool is None:
        return None
    # psycopg_pool counts timeouts in requests_errors.
    return psycopg_pool_stats(alias, pool)


class DjangoDatabase:
    """Django's statements (every alias) and the pool of database ``alias`` as a kit's
    database source: ``Perfkit(pool=DjangoDatabase())``.

    The statements are those the app config times (``"perfkit.contrib.django"`` in
    ``INSTALLED_APPS``), in :func:`get_query_stats`. The pool is Django's psycopg pool
    when it is on, else ``None``: Django's own connections have no pool to report.

    ``explain`` (``True`` or :class:`~perfkit.queries.ExplainSettings`): EXPLAIN the slow
    statements of database ``alias`` on a connection of its own, made from Django's
    connection settings for it (docs/queries.md, "Plans of slow statements").
    """

    def __init__(self, alias: str = "default", *, explain: ExplainSettings | bool = False) -> None:
        self.alias = alias
        self.explainer: Explainer | None = None
        if explain is not False:
            sampler = get_query_stats().plan_sampler(explain if explain is not True else None)
            conninfo = conninfo_of(connections[alias].get_connection_params())
            self.explainer = Explainer(conninfo, sampler)
            sampler.attach(alias, self.explainer)

    def __repr__(self) -> str:
        return f"DjangoDatabase(alias={self.alias!r})"

    @property
    def query_stats(self) -> QueryStats:
        """The statistics Django's statements go to (:func:`get_query_stats`)."""
        return get_query_stats()

    def stats(self, top: int | None = None) -> DatabaseStats:
        """The pool (``None`` without Django's pool) and the statements (``top`` cuts the
        per-fingerprint list)."""
        return DatabaseStats(pool=pool_stats(self.alias), queries=get_query_stats().stats(top))

    def reset_stats(self) -> None:
        """Zero the statement statistics and the pool's counters."""
        get_query_stats().reset()
        pool = getattr(connections[self.alias], "pool", None)
        if pool is not None:
            pool.pop_stats()
