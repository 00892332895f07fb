"""What the admin API reads and acts on: the :class:`AdminSource` protocol.

The admin depends on this protocol, never on :class:`perfkit.Perfkit` (which implements
it), so that the kit builds the admin apps and the admin does not import the kit back.
The parts are read for their stats and actions; the health checks come ready to call
from :meth:`AdminSource.dependencies`, so the admin never reaches into a part's client.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import psycopg

from perfkit.admin.schemas import DependencyName
from perfkit.cache import AsyncRedisService, CacheWarmer, RedisService
from perfkit.jobs import JobService
from perfkit.metrics import PerformanceMonitor
from perfkit.metrics.fleet import Fleet
from perfkit.queries import AsyncTimedPool, DatabaseSource, TimedPool

__all__ = ["AdminSource", "Dependency", "pool_ping"]


class Dependency(NamedTuple):
    """One health check: ``ping`` (sync or async, no arguments) raises when ``name`` is
    down; a ``required`` one down makes the health ``down`` (HTTP 503)."""

    name: DependencyName
    ping: Callable[[], Any]
    required: bool


class AdminSource(Protocol):
    """The admin API's view of an app's parts (:class:`perfkit.Perfkit` implements it).

    Every part is optional: a route needing one that is ``None`` answers 404.
    """

    @property
    def queues(self) -> tuple[str, ...]:
        """The job queues the admin reports on and accepts as ``queue``."""
        ...

    @property
    def health_open(self) -> bool:
        """Whether GET health answers without credentials."""
        ...

    @property
    def monitor(self) -> PerformanceMonitor:
        """The stats sources (collectors), request metrics and recommendations."""
        ...

    @property
    def fleet(self) -> Fleet:
        """The numbers of every process of the app."""
        ...

    @property
    def cache(self) -> RedisService | AsyncRedisService | None:
        """The cache (stats, invalidation, reset)."""
        ...

    @property
    def pool(self) -> DatabaseSource | None:
        """The database: a pool of perfkit's, or another library's statements (statement
        stats, the pool's when there is one, reset)."""
        ...

    @property
    def jobs(self) -> JobService | None:
        """The job service (queue stats, failed jobs, retry, clear)."""
        ...

    @property
    def warmer(self) -> CacheWarmer | None:
        """The cache warmer (names, last results, warming)."""
        ...

    def dependencies(self) -> list[Dependency]:
        """The health checks, in the order they are reported."""
        ...


def _ping_pool(pool: TimedPool, timeout: float) -> None:
    # An untimed cursor: health checks must not show up in the query statistics.
    with pool.connection(timeout=timeout) as conn, psycopg.Cursor(conn) as cursor:
        cursor.execute("SELECT 1")


async def _ping_async_pool(pool: AsyncTimedPool, timeout: float) -> None:  # noqa: ASYNC109 (psycopg_pool's timeout)
    async with pool.connection(timeout=timeout) as conn, psycopg.AsyncCursor(conn) as cursor:
        await cursor.execute("SELECT 1")


def pool_ping(pool: TimedPool | AsyncTimedPool, timeout: float) -> Callable[[], Any]:
    """A health check running ``SELECT 1`` on a connection of ``pool`` (a coroutine
    function for an async pool), outside the query statistics."""
    if isinstance(pool, AsyncTimedPool):
        return functools.partial(_ping_async_pool, pool, timeout)
    return functools.partial(_ping_pool, pool, timeout)
