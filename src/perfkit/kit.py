"""Perfkit: one object holding the parts an app uses (cache, pool, jobs, metrics, warmer),
their background work, the request middleware and the admin API apps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis
import structlog

from perfkit._acompat import is_async_callable
from perfkit._errors import ConfigError
from perfkit.admin.asgi import ASGIAdmin
from perfkit.admin.auth import Authorize, Guard
from perfkit.admin.calls import InlineCaller, ThreadCaller
from perfkit.admin.core import AdminCore
from perfkit.admin.source import Dependency, pool_ping
from perfkit.admin.wsgi import WSGIAdmin
from perfkit.cache import (
    AsyncCacheWarmer,
    AsyncRedisService,
    CacheWarmer,
    RedisService,
    default_warmer,
)
from perfkit.cache.warmer import WarmLease
from perfkit.jobs import JobService
from perfkit.jobs.queues import DEFAULT_QUEUES
from perfkit.metrics import PerformanceLog, PerformanceMonitor
from perfkit.metrics.fleet import TOP_STATEMENTS, Fleet
from perfkit.queries import AsyncTimedPool, DatabaseSource, TimedPool
from perfkit.queries._merge import export_query_stats
from perfkit.settings import Settings
from perfkit.types import ASGIApp, WSGIApp

__all__ = ["Perfkit"]

_log = structlog.get_logger("perfkit")
_DEPENDENCIES = frozenset({"redis", "database", "jobs"})


class Perfkit:
    """The parts an app uses, each optional, and the admin API over them.

    - ``cache``: a :class:`~perfkit.cache.RedisService` or ``AsyncRedisService``;
      ``pool``: the database, a :class:`~perfkit.queries.TimedPool` or ``AsyncTimedPool``
      — or the statements Django or SQLAlchemy run
      (:class:`~perfkit.contrib.django.db.DjangoDatabase`,
      :func:`perfkit.contrib.sqlalchemy.instrument`'s result), read the same way; ``jobs``: a
      :class:`~perfkit.jobs.JobService` (its ``queues`` are the base queues the admin
      reports on; ``queues`` here only without a job service);
      ``warmer``: a :class:`~perfkit.cache.CacheWarmer`.
    - ``metrics``: a :class:`~perfkit.metrics.PerformanceMonitor`; by default one is built
      over the parts given (pass your own only if it reads the same parts).
    - Admin security: ``token`` (default PERFKIT_ADMIN_TOKEN) and/or ``authorize``, a
      callable given the :class:`~perfkit.admin.Request` returning bool (sync or async).
      With neither, every admin route answers 403. ``health_open`` (default
      PERFKIT_ADMIN_HEALTH_OPEN) lets GET ``health`` answer without credentials.
    - ``required``: dependencies whose outage makes health ``down`` (HTTP 503); default
      ``database`` and ``jobs`` — the cache falls back to memory, so Redis for the cache
      only makes it ``degraded``.
    - The fleet view (``fleet``, default on): with a Redis (the cache's, else the job
      service's) every process publishes its numbers every ``fleet_interval`` seconds once
      the kit is started, and the admin answers with the merged numbers of every process
      (see :mod:`perfkit.metrics.fleet`); scheduled warm-ups then run once per interval
      across the processes.

    Start and stop the background work with ``async with kit:`` (an async app, e.g. in a
    FastAPI/Starlette lifespan: the warming schedule runs as a task of the loop), or
    ``with kit:`` / :meth:`start` and :meth:`stop` (threads).

    The kit is the admin API's :class:`~perfkit.admin.source.AdminSource`.
    """

    def __init__(
        self,
        *,
        cache: RedisService | AsyncRedisService | None = None,
        pool: DatabaseSource | None = None,
        jobs: JobService | None = None,
        metrics: PerformanceMonitor | None = None,
        warmer: CacheWarmer | None = None,
        settings: Settings | None = None,
        queues: Iterable[str] | None = None,
        token: str | None = None,
        authorize: Authorize | None = None,
        health_open: bool | None = None,
        max_body: int | None = None,
        required: Iterable[str] = ("database", "jobs"),
        health_timeout: float = 2.0,
        performance_log: bool = True,
        fleet: bool = True,
        fleet_interval: float = 2.0,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self.cache = cache
        self.pool = pool
        self.jobs = jobs
        self.warmer = warmer
        self._queues = _queues(jobs, queues)
        self.required = frozenset(required)
        unknown = self.required - _DEPENDENCIES
        if unknown:
            raise ConfigError(
                f"required: unknown dependencies {sorted(unknown)}; known: {sorted(_DEPENDENCIES)}"
            )
        self.monitor = (
            metrics
            if metrics is not None
            else PerformanceMonitor(
                settings=self.settings,
                cache=cache,
                pool=pool,
                jobs=jobs,
            )
        )
        self.token = token if token is not None else self.settings.perfkit_admin_token
        self.authorize = authorize
        self.health_open = (
            health_open if health_open is not None else self.settings.perfkit_admin_health_open
        )
        self.max_body = max_body if max_body is not None else self.settings.perfkit_admin_max_body
        if self.max_body < 1 or health_timeout <= 0:
            raise ConfigError("max_body and health_timeout must be positive")
        self.health_timeout = health_timeout
        self.performance_log = PerformanceLog(self.monitor) if performance_log else None
        self._guard: Guard | None = None
        self._owned: list[Any] = []
        client = _fleet_client(cache, jobs) if fleet else None
        self._fleet_client_owned = client is not None and isinstance(cache, AsyncRedisService)
        namespace = cache.namespace if cache is not None else self.settings.cache_namespace
        self.fleet = Fleet(
            self.monitor,
            client,
            namespace=namespace,
            interval=fleet_interval,
            queries=_query_export(pool),
        )
        if client is not None and warmer is not None and warmer.lease is None:
            warmer.lease = WarmLease(
                client, namespace=namespace, process=lambda: self.fleet.process
            )

    @property
    def queues(self) -> tuple[str, ...]:
        """The base queues the admin reports on: the job service's (without one, the
        ``queues`` given)."""
        return self.jobs.queues if self.jobs is not None else self._queues

    def __repr__(self) -> str:
        parts = [name for name in ("cache", "pool", "jobs", "warmer") if getattr(self, name)]
        return f"Perfkit(parts={parts}, queues={list(self.queues)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Perfkit:
        """A kit of sync parts configured from the environment: the cache and the job
        service on REDIS_URL, a pool on DATABASE_URL (when set), the default warmer.

        The kit owns what it creates: :meth:`start` opens the pool, :meth:`stop` closes
        the pool and the clients. Keyword arguments override parts or options.
        """
        settings = Settings.from_env(environ)
        owned: list[Any] = []
        parts: dict[str, Any] = {"settings": settings}
        if "cache" not in overrides:
            parts["cache"] = RedisService(settings=settings)
            owned.append(parts["cache"])
        if "pool" not in overrides and settings.database_url:
            parts["pool"] = TimedPool.from_env(environ)
            owned.append(parts["pool"])
        if "jobs" not in overrides:
            queues = overrides.get("queues") or DEFAULT_QUEUES
            parts["jobs"] = JobService.from_settings(settings, queues=queues)
            owned.append(parts["jobs"].connection)
        if "warmer" not in overrides:
            parts["warmer"] = default_warmer()
        kit = cls(**(parts | overrides))
        kit._owned = owned
        return kit

    # -- the admin API ---------------------------------------------------------------------

    def dependencies(self) -> list[Dependency]:
        """The health checks of the parts given (the admin's ``health`` routes): Redis
        through the cache (a full or read-only Redis answers PING, and degrades the cache
        all the same), the database (a pool of perfkit's), the job service's Redis."""
        checks = []
        if self.cache is not None:
            checks.append(Dependency("redis", self.cache.ping, "redis" in self.required))
        if isinstance(self.pool, TimedPool | AsyncTimedPool):
            ping = pool_ping(self.pool, self.health_timeout)
            checks.append(Dependency("database", ping, "database" in self.required))
        if self.jobs is not None:
            checks.append(Dependency("jobs", self.jobs.connection.ping, "jobs" in self.required))
        return checks

    @property
    def guard(self) -> Guard:
        """The admin API's credential check (made once: a locked kit logs why once)."""
        if self._guard is None:
            self._guard = Guard(token=self.token, authorize=self.authorize)
        return self._guard

    def asgi_admin(self) -> ASGIApp:
        """The admin API as an ASGI app: ``app.mount("/api/admin/performance", ...)``."""
        core = AdminCore(
            self,
            ThreadCaller(),
            guard=self.guard,
            max_body=self.max_body,
            health_open=self.health_open,
        )
        return ASGIAdmin(core)

    def wsgi_admin(self) -> WSGIApp:
        """The admin API as a WSGI app (sync parts only); mount it with werkzeug's
        ``DispatcherMiddleware`` or :func:`perfkit.admin.mount_wsgi`."""
        async_parts = [
            name
            for name, part in (("cache", self.cache), ("pool", self.pool))
            if isinstance(part, AsyncRedisService | AsyncTimedPool)
        ]
        async_parts += [
            collector.prefix
            for collector in self.monitor.sources
            if is_async_callable(collector.fetch)
        ]
        if async_parts:
            raise ConfigError(
                f"wsgi_admin() needs sync parts; {async_parts} are async: use asgi_admin()"
            )
        core = AdminCore(
            self,
            InlineCaller(),
            guard=self.guard,
            max_body=self.max_body,
            health_open=self.health_open,
        )
        return WSGIAdmin(core)

    # -- request middleware ----------------------------------------------------------------

    def asgi(self, app: ASGIApp, **options: Any) -> ASGIApp:
        """``app`` with request metrics and compression (see ``PerformanceMonitor.asgi``)."""
        return self.monitor.asgi(app, **options)

    def wsgi(self, app: WSGIApp, **options: Any) -> WSGIApp:
        """``app`` with request metrics and compression (see ``PerformanceMonitor.wsgi``)."""
        return self.monitor.wsgi(app, **options)

    # -- background work -------------------------------------------------------------------

    def start(self) -> None:
        """Open an owned pool, start the warming schedule, the fleet publisher and the
        performance log (threads). Call it in each worker process, after the fork."""
        for part in self._owned:
            if isinstance(part, TimedPool):
                part.open()
        self.fleet.start()
        if self.warmer is not None:
            self.warmer.start()
        if self.performance_log is not None:
            self.performance_log.start()

    def stop(self) -> None:
        """Stop the background work (this process leaves the fleet's live list, its totals
        stay) and close what the kit created."""
        if self.performance_log is not None:
            self.performance_log.stop()
        if self.warmer is not None:
            self.warmer.stop()
        self._stop_fleet()
        for part in self._owned:
            part.close()

    def __enter__(self) -> Perfkit:
        """``with kit:`` runs :meth:`start`, and :meth:`stop` on the way out."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Perfkit:
        """``async with kit:`` starts as :meth:`start` does, with the warming schedule as a
        task of the running loop; on the way out it stops as :meth:`stop` does."""
        for part in self._owned:
            if isinstance(part, TimedPool):
                part.open()
        self.fleet.start()
        if self.warmer is not None:
            await AsyncCacheWarmer.of(self.warmer).start()
        if self.performance_log is not None:
            self.performance_log.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.performance_log is not None:
            self.performance_log.stop()
        if self.warmer is not None:
            await AsyncCacheWarmer.of(self.warmer).stop()
        self._stop_fleet()
        for part in self._owned:
            part.close()

    def _stop_fleet(self) -> None:
        self.fleet.stop()
        if self._fleet_client_owned:
            self.fleet.client.close()


def _fleet_client(
    cache: RedisService | AsyncRedisService | None, jobs: JobService | None
) -> redis.Redis | None:
    """A sync Redis client for the fleet publisher's thread: the sync cache's, else the
    job service's, else one to the async cache's server. ``None`` on a Redis Cluster (the
    fleet's keys would span slots)."""
    if isinstance(cache, RedisService) and isinstance(cache.client, redis.Redis):
        return cache.client
    if jobs is not None:
        return jobs.connection
    if isinstance(cache, AsyncRedisService) and isinstance(cache.client, redis.asyncio.Redis):
        kwargs = cache.client.connection_pool.connection_kwargs
        if "path" in kwargs:
            return redis.Redis(unix_socket_path=kwargs["path"], **_common(kwargs))
        return redis.Redis(host=kwargs.get("host", "localhost"), port=kwargs.get("port", 6379),
                           **_common(kwargs))  # fmt: skip
    if cache is not None:
        _log.warning("fleet.unavailable", reason="a Redis Cluster client: no fleet view")
    return None


def _queues(jobs: JobService | None, queues: Iterable[str] | None) -> tuple[str, ...]:
    """The base queues the kit reports on: the job service's (``queues``, if given, must
    be the same), else ``queues``."""
    given = tuple(dict.fromkeys(queues)) if queues is not None else None
    if given is not None and not given:
        raise ConfigError("queues must name at least one queue")
    if jobs is None:
        return given or DEFAULT_QUEUES
    if given is not None and given != jobs.queues:
        # The service reads its own queues: two lists would disagree about what is reported.
        raise ConfigError(
            f"queues {list(given)} differ from the JobService's {list(jobs.queues)}: "
            "give the queues to JobService(queues=...)"
        )
    return jobs.queues


def _common(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    names = ("db", "username", "password", "socket_timeout", "socket_connect_timeout")
    return {name: kwargs[name] for name in names if name in kwargs}


def _query_export(pool: DatabaseSource | None) -> Any:
    if pool is None:
        return None
    return lambda: export_query_stats(pool.query_stats, TOP_STATEMENTS)
