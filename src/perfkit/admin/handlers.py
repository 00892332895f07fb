"""The admin API's handlers: framework-free coroutines over the kit's parts.

Every handler takes the :class:`~perfkit.admin.http.Request` (and the decoded body for a
POST) and returns a msgspec Struct (answered as JSON 200) or a
:class:`~perfkit.admin.http.Response`. All I/O goes through the :class:`Caller`, which is
what makes the same code right under ASGI and WSGI (see :mod:`perfkit.admin.calls`).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool
import redis
import structlog

from perfkit._acompat import is_async_callable
from perfkit._errors import JobError
from perfkit.admin import schemas as s
from perfkit.admin.calls import Caller, ThreadCaller
from perfkit.admin.http import AdminError, Request, Response
from perfkit.cache import AsyncCacheWarmer
from perfkit.jobs import periodic_runs
from perfkit.metrics import (
    CONTENT_TYPE,
    OPENMETRICS_CONTENT_TYPE,
    StatsCollector,
    memory_limit,
    render,
    resident_memory,
    wants_openmetrics,
)
from perfkit.metrics.fleet import FleetView
from perfkit.metrics.system import process_start_time
from perfkit.queries import AsyncTimedPool, TimedPool

if TYPE_CHECKING:
    from perfkit.kit import Perfkit

__all__ = ["Handlers"]

_log = structlog.get_logger("perfkit.admin")

# Errors that mean a dependency is away: answered 503, never 500.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis.RedisError,
    psycopg.Error,
    psycopg_pool.PoolTimeout,
    OSError,
)
RECENT_FAILURES = 10
DASHBOARD_TOP = 10
# Pages across every queue merge each queue's first offset+limit entries: bounded.
CROSS_QUEUE_WINDOW = 200


def not_configured(part: str) -> AdminError:
    """The 404 answer for a route whose part the kit was built without."""
    return AdminError(404, "not_configured", f"{part} is not configured in this Perfkit")


def int_param(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    """Query parameter ``name`` as an int in [low, high], or 400 naming it."""
    raw = request.param(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise AdminError(400, "bad_request", f"{name}: expected an integer") from None
    if not low <= value <= high:
        raise AdminError(400, "bad_request", f"{name}: must be between {low} and {high}")
    return value


class Handlers:
    """The routes' logic over ``kit``'s parts, doing I/O through ``call``."""

    def __init__(self, kit: Perfkit, call: Caller) -> None:
        self.kit = kit
        self.call = call

    # -- reading the parts ------------------------------------------------------------------

    async def _part(self, part: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await self.call(func, *args, **kwargs)
        except UNAVAILABLE as exc:
            _log.warning("admin.part_unavailable", part=part, error=type(exc).__name__)
            raise AdminError(503, "unavailable", f"{part}: {type(exc).__name__}") from exc

    async def _refreshed(self, part: str, collector: StatsCollector) -> Any:
        if is_async_callable(collector.fetch):
            await self._part(part, collector.arefresh)
        else:
            await self._part(part, collector.refresh)
        return collector.latest

    async def _refresh_all(self) -> None:
        """Refresh the monitor's sources; one that fails keeps its last value."""
        monitor = self.kit.monitor
        for part, collector in (
            ("cache", monitor.cache),
            ("database", monitor.pool),
            ("jobs", monitor.jobs),
        ):
            if collector is not None:
                with contextlib.suppress(AdminError):
                    await self._refreshed(part, collector)

    async def _cache_metrics(self) -> Any:
        cache = self.kit.cache
        if cache is None:
            raise not_configured("cache")
        collector = self.kit.monitor.cache
        if collector is not None:
            return await self._refreshed("cache", collector)
        return await self._part("cache", cache.metrics)

    async def _queue_stats(self) -> list[Any]:
        jobs = self.kit.jobs
        if jobs is None:
            raise not_configured("jobs")
        stats: list[Any] = await self._part("jobs", jobs.stats, self.kit.queues)
        return stats

    async def _jobs_report(self) -> s.JobsReport:
        queues = await self._queue_stats()
        page = await self._failed_page(None, 0, RECENT_FAILURES)
        runs: list[Any] = await self._part("jobs", periodic_runs, self.kit.jobs)
        degraded = any(queue.status != "healthy" for queue in queues)
        return s.JobsReport(
            status="degraded" if degraded else "healthy",
            queues=queues,
            recent_failures=page.jobs,
            periodic=runs,
        )

    async def _failed_page(self, queue: str | None, offset: int, limit: int) -> s.FailedJobsReport:
        jobs = self.kit.jobs
        if jobs is None:
            raise not_configured("jobs")
        if queue is not None:
            page = await self._part("jobs", jobs.failed_jobs, queue, offset=offset, limit=limit)
            return s.FailedJobsReport(
                queue=queue, total=page.total, offset=offset, limit=limit, jobs=page.jobs
            )
        if offset + limit > CROSS_QUEUE_WINDOW:
            raise AdminError(
                400,
                "bad_request",
                f"offset: across all queues offset+limit may be at most {CROSS_QUEUE_WINDOW}; "
                "page further with queue=<name>",
            )
        total = 0
        merged = []
        for name in self.kit.queues:
            page = await self._part("jobs", jobs.failed_jobs, name, offset=0, limit=offset + limit)
            total += page.total
            merged.extend(page.jobs)
        merged.sort(
            key=lambda job: job.failed_at.timestamp() if job.failed_at else 0.0, reverse=True
        )
        return s.FailedJobsReport(
            queue=None,
            total=total,
            offset=offset,
            limit=limit,
            jobs=merged[offset : offset + limit],
        )

    async def _fleet(self) -> FleetView:
        """The fleet's numbers; this process's alone while Redis is away (never a 503: the
        admin still answers for what it knows)."""
        fleet = self.kit.fleet
        try:
            view: FleetView = await self.call(fleet.read)
        except UNAVAILABLE as exc:
            _log.warning("admin.fleet_unavailable", error=type(exc).__name__)
            return fleet.local()
        return view

    def _fleet_queries(self, view: FleetView, top: int) -> s.DatabaseReport | None:
        """The pool (this process's) and the statements merged over the fleet."""
        if self.kit.pool is None:
            return None
        stats = self.kit.pool.get_stats(0)
        queries = view.queries(top)
        return s.DatabaseReport(
            pool=stats.pool,
            queries=queries if queries is not None else stats.queries,
            scope=view.scope,
        )

    def _memory(self) -> s.MemoryReport:
        rss = resident_memory()
        limit = memory_limit(self.kit.monitor.configured_memory_limit)
        return s.MemoryReport(
            rss_bytes=rss, limit_bytes=limit, ratio=rss / limit if limit else None
        )

    def _queue_name(self, value: str | None) -> str | None:
        if value is not None and value not in self.kit.queues:
            raise AdminError(
                400,
                "bad_request",
                f"queue: unknown queue {value!r}; known: {list(self.kit.queues)}",
            )
        return value

    # -- GET routes -------------------------------------------------------------------------

    async def summary(self, request: Request) -> s.SummaryReport:
        """GET summary."""
        await self._refresh_all()
        view = await self._fleet()
        queries = view.queries(0) if self.kit.pool is not None else None
        report = self.kit.monitor.report(
            requests=view.requests(),
            slowest=view.slowest(),
            slow_query_pct=queries.slow_pct if queries is not None and queries.count else None,
        )
        return s.SummaryReport(
            at=report.at,
            uptime_s=report.uptime_s,
            requests=report.requests,
            memory=s.MemoryReport(
                rss_bytes=report.memory_rss,
                limit_bytes=report.memory_limit,
                ratio=report.memory_ratio,
            ),
            cache_hit_rate=report.cache_hit_rate,
            slow_query_pct=report.slow_query_pct,
            queue_depth=report.queue_depth,
            failed_jobs=report.failed_jobs,
            recommendations=report.findings,
            scope=view.scope,
            processes=len(view.live),
        )

    async def dashboard(self, request: Request) -> s.DashboardReport:
        """GET dashboard."""
        kit = self.kit
        await self._refresh_all()
        view = await self._fleet()
        database = self._fleet_queries(view, DASHBOARD_TOP)
        report = kit.monitor.report(
            requests=view.requests(),
            slowest=view.slowest(),
            slow_query_pct=(
                database.queries.slow_pct
                if database is not None and database.queries.count
                else None
            ),
        )
        cache = kit.monitor.cache.latest if kit.monitor.cache is not None else None
        if cache is None and kit.cache is not None:
            cache = await self._optional(self._cache_metrics())
        jobs = await self._optional(self._jobs_report()) if kit.jobs is not None else None
        return s.DashboardReport(
            at=report.at,
            uptime_s=report.uptime_s,
            api=report.requests,
            slowest_requests=report.slowest,
            database=database,
            system=s.MemoryReport(
                rss_bytes=report.memory_rss,
                limit_bytes=report.memory_limit,
                ratio=report.memory_ratio,
            ),
            cache=cache,
            jobs=jobs,
            recommendations=report.findings,
            trends=view.trend_points(last=60),
            scope=view.scope,
            processes=view.processes,
        )

    @staticmethod
    async def _optional(awaitable: Any) -> Any:
        try:
            return await awaitable
        except AdminError:
            return None

    async def queries(self, request: Request) -> s.DatabaseReport:
        """GET queries."""
        if self.kit.pool is None:
            raise not_configured("database pool")
        top = int_param(request, "top", 20, low=1, high=100)
        report = self._fleet_queries(await self._fleet(), top)
        if report is None:  # pragma: no cover - checked above
            raise not_configured("database pool")
        return report

    async def realtime(self, request: Request) -> s.RealtimeReport:
        """GET realtime."""
        kit = self.kit
        redis_check = None
        if kit.cache is not None:
            redis_check = await self._check("redis", kit.cache.ping)
        elif kit.jobs is not None:
            redis_check = await self._check("redis", kit.jobs.connection.ping)
        view = await self._fleet()
        now = time.time()
        return s.RealtimeReport(
            at=now,
            uptime_s=now - process_start_time(),
            memory=self._memory(),
            requests_in_flight=sum(p.in_flight for p in view.processes),
            database=kit.pool.get_stats(0).pool if kit.pool is not None else None,
            redis=redis_check,
            scope=view.scope,
            processes=view.processes,
        )

    async def trends(self, request: Request) -> s.TrendsReport:
        """GET trends."""
        last = int_param(request, "last", 60, low=1, high=24 * 60)
        view = await self._fleet()
        return s.TrendsReport(points=view.trend_points(last=last), scope=view.scope)

    async def cache(self, request: Request) -> s.CacheReport:
        """GET cache."""
        metrics = await self._cache_metrics()
        warmer = self.kit.warmer
        fleet_warm = None
        if warmer is not None and warmer.lease is not None:
            fleet_warm = await self._optional(self._part("cache", warmer.lease.last))
        return s.CacheReport(
            metrics=metrics,
            warmers=warmer.names if warmer is not None else [],
            last_warm=list(warmer.last_results) if warmer is not None else [],
            fleet_warm=fleet_warm,
        )

    async def jobs(self, request: Request) -> s.JobsReport:
        """GET jobs."""
        return await self._jobs_report()

    async def jobs_failed(self, request: Request) -> s.FailedJobsReport:
        """GET jobs/failed."""
        if self.kit.jobs is None:
            raise not_configured("jobs")
        queue = self._queue_name(request.param("queue"))
        offset = int_param(request, "offset", 0, low=0, high=100_000)
        limit = int_param(request, "limit", 20, low=1, high=100)
        return await self._failed_page(queue, offset, limit)

    async def _check(
        self, name: Any, ping: Callable[..., Any], required: bool = False
    ) -> s.Dependency:
        start = time.perf_counter()
        try:
            await self.call(ping)
        except Exception as exc:
            return s.Dependency(
                name=name,
                status="down",
                required=required,
                latency_ms=None,
                error=type(exc).__name__,
            )
        latency = round((time.perf_counter() - start) * 1000, 3)
        return s.Dependency(name=name, status="up", required=required, latency_ms=latency)

    async def _dependencies(self) -> tuple[s.HealthStatus, list[s.Dependency]]:
        kit = self.kit
        checks = []
        if kit.cache is not None:
            checks.append(
                # The cache's own check: a full or read-only Redis answers PING, and
                # degrades the cache all the same.
                await self._check("redis", kit.cache.ping, "redis" in kit.required)
            )
        if kit.pool is not None:
            if isinstance(kit.pool, AsyncTimedPool):
                ping = _bind_async(ping_async_pool, kit.pool, kit.health_timeout)
            else:
                ping = functools.partial(ping_pool, kit.pool, kit.health_timeout)
            checks.append(await self._check("database", ping, "database" in kit.required))
        if kit.jobs is not None:
            checks.append(
                await self._check("jobs", kit.jobs.connection.ping, "jobs" in kit.required)
            )
        down = [check for check in checks if check.status == "down"]
        if any(check.required for check in down):
            return "down", checks
        return ("degraded" if down else "ok"), checks

    async def health(self, request: Request) -> Response:
        """GET health: 200 unless a required dependency is down (503)."""
        status, _ = await self._dependencies()
        return Response.json(s.Health(status=status), 503 if status == "down" else 200)

    async def health_detailed(self, request: Request) -> Response:
        """GET health/detailed: each dependency; 503 when a required one is down."""
        status, checks = await self._dependencies()
        body = s.DetailedHealth(
            status=status, uptime_s=time.time() - process_start_time(), dependencies=checks
        )
        return Response.json(body, 503 if status == "down" else 200)

    async def metrics(self, request: Request) -> Response:
        """GET metrics: the Prometheus text exposition (OpenMetrics when the scraper's
        Accept header asks for it)."""
        await self._refresh_all()
        openmetrics = wants_openmetrics(request.headers.get("accept"))
        view = await self._fleet()
        text = render(view.metrics, openmetrics=openmetrics)
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else CONTENT_TYPE
        return Response(headers=[("content-type", content_type)], body=text.encode())

    # -- POST routes ------------------------------------------------------------------------

    async def cache_warm(self, request: Request, body: s.WarmBody) -> s.WarmReport:
        """POST cache/warm."""
        warmer = self.kit.warmer
        if warmer is None:
            raise not_configured("cache warming")
        if body.names is not None:
            unknown = [name for name in body.names if name not in warmer.names]
            if unknown:
                raise AdminError(
                    400,
                    "bad_request",
                    f"names: unknown warmer(s) {unknown}; registered: {warmer.names}",
                )
        if isinstance(self.call, ThreadCaller):
            results = await AsyncCacheWarmer.of(warmer).warm(body.names)
        else:
            results = await self.call(warmer.warm, body.names)
        return s.WarmReport(ok=all(result.ok for result in results), results=results)

    async def cache_invalidate(
        self, request: Request, body: s.InvalidateBody
    ) -> s.InvalidateResult:
        """POST cache/invalidate."""
        cache = self.kit.cache
        if cache is None:
            raise not_configured("cache")
        if body.pattern is None and body.tags is None:
            raise AdminError(400, "bad_request", "pattern, tags: give at least one of them")
        deleted = 0
        if body.pattern is not None:
            deleted = await self._part("cache", cache.invalidate_pattern, body.pattern)
        if body.tags is not None:
            await self._part("cache", cache.invalidate_tags, body.tags)
        _log.info("admin.cache_invalidated", deleted=deleted, tags=len(body.tags or ()))
        return s.InvalidateResult(deleted=deleted, tags=len(set(body.tags or ())))

    async def jobs_retry(self, request: Request, body: s.RetryBody) -> s.RetryResult:
        """POST jobs/retry."""
        jobs = self.kit.jobs
        if jobs is None:
            raise not_configured("jobs")
        queue = self._queue_name(body.queue)
        if body.job_id is None:
            queues = [queue] if queue is not None else list(self.kit.queues)
            requeued = await self._part("jobs", jobs.retry_all_failed, queues)
            _log.info("admin.jobs_retried", requeued=requeued, queues=queues)
            return s.RetryResult(requeued=requeued)
        try:
            status = await self._part("jobs", jobs.job_status, body.job_id)
        except JobError:
            raise AdminError(404, "not_found", f"job_id: no job {body.job_id!r}") from None
        if status != "failed":
            raise AdminError(
                409, "conflict", f"job_id: job {body.job_id!r} is {status}, not failed"
            )
        try:
            await self._part("jobs", jobs.retry_failed, body.job_id)
        except JobError as exc:
            raise AdminError(409, "conflict", f"job_id: {exc}") from None
        _log.info("admin.jobs_retried", requeued=1, job_id=body.job_id)
        return s.RetryResult(requeued=1)

    async def jobs_clear(self, request: Request, body: s.ClearBody) -> s.ClearResult:
        """POST jobs/clear."""
        jobs = self.kit.jobs
        if jobs is None:
            raise not_configured("jobs")
        queue = self._queue_name(body.queue)
        queues = [queue] if queue is not None else list(self.kit.queues)
        cleared = await self._part("jobs", jobs.clear_completed, queues)
        _log.info("admin.jobs_cleared", cleared=cleared, queues=queues)
        return s.ClearResult(cleared=cleared)

    async def metrics_reset(self, request: Request, body: s.ResetBody) -> s.ResetResult:
        """POST metrics/reset: zero the query statistics and the cache counters."""
        reset = []
        if self.kit.pool is not None:
            self.kit.pool.reset_stats()
            reset.append("queries")
        if self.kit.cache is not None:
            self.kit.cache.reset_metrics()
            reset.append("cache")
        _log.info("admin.metrics_reset", reset=reset)
        return s.ResetResult(reset=reset)


def ping_pool(pool: TimedPool, timeout: float) -> None:
    """``SELECT 1`` on a connection of ``pool``, through an untimed cursor (health checks
    must not show up in the query statistics)."""
    with pool.connection(timeout=timeout) as conn, psycopg.Cursor(conn) as cursor:
        cursor.execute("SELECT 1")


async def ping_async_pool(pool: AsyncTimedPool, timeout: float) -> None:  # noqa: ASYNC109 (psycopg_pool's timeout)
    """As :func:`ping_pool`, on an async pool."""
    async with pool.connection(timeout=timeout) as conn, psycopg.AsyncCursor(conn) as cursor:
        await cursor.execute("SELECT 1")


def _bind_async(func: Any, *args: Any) -> Any:
    async def bound() -> Any:
        return await func(*args)

    return bound
