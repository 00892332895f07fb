"""What the kit reads as its database: a :class:`DatabaseSource`.

perfkit's own pools are one; the statements of another library's connections are others
(``perfkit.contrib.django.db.DjangoDatabase``,
``perfkit.contrib.sqlalchemy.EngineInstrumentation``). The admin, the metrics and the
fleet view read any of them the same way.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from perfkit.queries._pool_base import PoolStats, TimedPoolStats
from perfkit.queries._stats import QueryStats, QueryStatsSnapshot

__all__ = ["DatabaseSource", "DatabaseStats"]


class DatabaseStats(msgspec.Struct, frozen=True, kw_only=True):
    """What a database source without a pool of perfkit's returns from ``stats()``: its
    pool's numbers (``None`` when it has no pool they can be read from) and its statements."""

    pool: PoolStats | None
    queries: QueryStatsSnapshot


class DatabaseSource(Protocol):
    """The statements (and pool) of an app's database, as the kit reads them: a
    :class:`~perfkit.queries.TimedPool` or ``AsyncTimedPool``, Django's database, or an
    instrumented SQLAlchemy engine."""

    @property
    def query_stats(self) -> QueryStats:
        """Where the statements are recorded (the fleet view publishes its top ones)."""
        ...

    def stats(self, top: int | None = None) -> TimedPoolStats | DatabaseStats:
        """The pool and the statements (``top`` cuts the per-fingerprint list)."""
        ...

    def reset_stats(self) -> None:
        """Zero the statement statistics and the pool's counters."""
        ...
