"""The admin API's handlers: framework-free coroutines over the kit's parts.

Every handler takes an :class:`Ask` — the request with its query parameters validated,
the decoded body of a POST and the part its route needs, all by the route table
(:mod:`perfkit.admin.routes`) — and returns a msgspec Struct (answered as JSON 200) or a
:class:`~perfkit.admin.http.Response`. The handlers read the app through the
:class:`~perfkit.admin.source.AdminSource` protocol, and all I/O goes through the
:class:`Caller`, which is what makes the same code right under ASGI and WSGI (see
:mod:`perfkit.admin.calls`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import psycopg
import psycopg_pool
import redis
import structlog

from perfkit._errors import JobError
from perfkit.admin import schemas as s
from perfkit.admin.calls import Caller, ThreadCaller
from perfkit.admin.dashboard import DASHBOARD
from perfkit.admin.http import AdminError, Request, Response
from perfkit.admin.source import AdminSource
from perfkit.cache import AsyncCacheWarmer, AsyncRedisService, RedisService
from perfkit.jobs import JobService, JobStats
from perfkit.jobs.periodic import periodic_runs
from perfkit.metrics import (
    CONTENT_TYPE,
    OPENMETRICS_CONTENT_TYPE,
    StatsCollector,
    wants_openmetrics,
)
from perfkit.metrics.exposition import render
from perfkit.metrics.fleet import FleetView
from perfkit.metrics.job_metrics import job_snapshots
from perfkit.metrics.system import memory_limit, process_start_time, resident_memory
from perfkit.queries import DatabaseSource, get_n_plus_one_detector

__all__ = ["Ask", "Handlers"]

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


class Ask(msgspec.Struct, frozen=True):
    """One request as a handler gets it, checked against its route: ``params`` maps each
    query parameter to its value (or default), ``body`` is the decoded body (``None``
    without one) and ``part`` the part the route needs (``None`` when it needs none)."""

    request: Request
    params: Mapping[str, Any]
    body: Any = None
    part: Any = None


def known_queue(queues: tuple[str, ...], value: str | None, field: str) -> str | None:
    """``value`` when it is one of ``queues`` (or ``None``), else 400 naming ``field``."""
    if value is not None and value not in queues:
        raise AdminError(
            400, "bad_request", f"{field}: unknown queue {value!r}; known: {list(queues)}"
        )
    return value


class Handlers:
    """The routes' logic over ``source``'s parts, doing I/O through ``call``."""

    def __init__(self, source: AdminSource, call: Caller) -> None:
        self.source = source
        self.call = call

    # -- reading the parts ------------------------------------------------------------------

    async def _part(self, part: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await self.call(func, *args, **kwargs)
        except UNAVAILABLE as exc:
            _log.warning("admin.part_unavailable", part=part, error=type(exc).__name__)
            raise AdminError(503, "unavailable", f"{part}: {type(exc).__name__}") from exc

    async def _refreshed(self, part: str, collector: StatsCollector) -> Any:
        return collector.keep(await self._part(part, collector.fetch))

    async def _refresh_all(self) -> None:
        """Refresh the monitor's sources; one that fails keeps its last value."""
        monitor = self.source.monitor
        for part, collector in (
            ("cache", monitor.cache_collector),
            ("database", monitor.pool_collector),
            ("jobs", monitor.jobs_collector),
        ):
            if collector is not None:
                with contextlib.suppress(AdminError):
                    await self._refreshed(part, collector)

    async def _cache_stats(self, cache: RedisService | AsyncRedisService) -> Any:
        collector = self.source.monitor.cache_collector
        if collector is not None:
            return await self._refreshed("cache", collector)
        return await self._part("cache", cache.stats)

    async def _jobs_report(self, jobs: JobService) -> s.JobsReport:
        stats: JobStats = await self._part("jobs", jobs.stats)
        queues = stats.queues
        page = await self._failed_page(jobs, None, 0, RECENT_FAILURES)
        runs: list[Any] = await self._part("jobs", periodic_runs, jobs)
        running: list[Any] = await self._part("jobs", jobs.running_jobs)
        metrics: list[Any] = await self._part("jobs", jobs.job_metrics)
        degraded = any(queue.status != "healthy" for queue in queues)
        return s.JobsReport(
            status="degraded" if degraded else "healthy",
            queues=queues,
            recent_failures=page.jobs,
            periodic=runs,
            running=running,
            metrics=metrics,
        )

    async def _failed_page(
        self, jobs: JobService, queue: str | None, offset: int, limit: int
    ) -> s.FailedJobsReport:
        """One queue's page, or (``queue`` None) one page across every queue."""
        queues = queue if queue is not None else self.source.queues
        page = await self._part("jobs", jobs.failed_jobs, queues, offset=offset, limit=limit)
        return s.FailedJobsReport(
            queue=queue, total=page.total, offset=offset, limit=limit, jobs=page.jobs
        )

    async def _fleet(self) -> FleetView:
        """The fleet's numbers; this process's alone while Redis is away (never a 503: the
        admin still answers for what it knows)."""
        fleet = self.source.fleet
        try:
            view: FleetView = await self.call(fleet.read)
        except UNAVAILABLE as exc:
            _log.warning("admin.fleet_unavailable", error=type(exc).__name__)
            return fleet.local()
        return view

    @staticmethod
    def _fleet_queries(pool: DatabaseSource, view: FleetView, top: int) -> s.DatabaseReport:
        """The pool (this process's) and the statements merged over the fleet."""
        stats = pool.stats(0)
        queries = view.queries(top)
        return s.DatabaseReport(
            pool=stats.pool,
            queries=queries if queries is not None else stats.queries,
            scope=view.scope,
            n_plus_one=view.n_plus_one() if queries is not None else [],
        )

    def _memory(self) -> s.MemoryReport:
        rss = resident_memory()
        limit = memory_limit(self.source.monitor.configured_memory_limit)
        return s.MemoryReport(
            rss_bytes=rss, limit_bytes=limit, ratio=rss / limit if limit else None
        )

    def _queues(self, queue: str | None) -> list[str]:
        """``queue`` (checked) as a list, or every configured queue."""
        known = known_queue(self.source.queues, queue, "queue")
        return [known] if known is not None else list(self.source.queues)

    @staticmethod
    async def _optional(awaitable: Any) -> Any:
        try:
            return await awaitable
        except AdminError:
            return None

    async def _check(
        self, name: s.DependencyName, ping: Callable[..., Any], required: bool = False
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
        checks = []
        for dependency in self.source.dependencies():
            checks.append(await self._check(dependency.name, dependency.ping, dependency.required))
        down = [check for check in checks if check.status == "down"]
        if any(check.required for check in down):
            return "down", checks
        return ("degraded" if down else "ok"), checks

    # -- GET routes -------------------------------------------------------------------------

    async def page(self, ask: Ask) -> Response:
        """GET (the mount point): the dashboard page."""
        return DASHBOARD.response()

    async def summary(self, ask: Ask) -> s.SummaryReport:
        """GET summary."""
        await self._refresh_all()
        view = await self._fleet()
        queries = view.queries(0) if self.source.pool is not None else None
        report = self.source.monitor.report(
            requests=view.requests(),
            slowest=view.slowest(),
            slow_query_pct=queries.slow_pct if queries is not None and queries.count else None,
            plans=queries.plans if queries is not None else None,
            n_plus_one=view.n_plus_one() if queries is not None else None,
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

    async def dashboard(self, ask: Ask) -> s.DashboardReport:
        """GET dashboard."""
        source = self.source
        await self._refresh_all()
        view = await self._fleet()
        database = (
            self._fleet_queries(source.pool, view, DASHBOARD_TOP)
            if source.pool is not None
            else None
        )
        report = source.monitor.report(
            requests=view.requests(),
            slowest=view.slowest(),
            slow_query_pct=(
                database.queries.slow_pct
                if database is not None and database.queries.count
                else None
            ),
            plans=database.queries.plans if database is not None else None,
            n_plus_one=database.n_plus_one if database is not None else None,
        )
        collector = source.monitor.cache_collector
        cache = collector.latest if collector is not None else None
        if cache is None and source.cache is not None:
            cache = await self._optional(self._cache_stats(source.cache))
        jobs = (
            await self._optional(self._jobs_report(source.jobs))
            if source.jobs is not None
            else None
        )
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

    async def queries(self, ask: Ask) -> s.DatabaseReport:
        """GET queries."""
        return self._fleet_queries(ask.part, await self._fleet(), ask.params["top"])

    async def realtime(self, ask: Ask) -> s.RealtimeReport:
        """GET realtime: Redis checked through the cache's client, else the job service's."""
        pings = {dependency.name: dependency.ping for dependency in self.source.dependencies()}
        redis_ping = pings.get("redis") or pings.get("jobs")
        redis_check = await self._check("redis", redis_ping) if redis_ping is not None else None
        view = await self._fleet()
        now = time.time()
        pool = self.source.pool
        return s.RealtimeReport(
            at=now,
            uptime_s=now - process_start_time(),
            memory=self._memory(),
            requests_in_flight=sum(p.in_flight for p in view.processes),
            database=pool.stats(0).pool if pool is not None else None,
            redis=redis_check,
            scope=view.scope,
            processes=view.processes,
        )

    async def trends(self, ask: Ask) -> s.TrendsReport:
        """GET trends."""
        view = await self._fleet()
        return s.TrendsReport(points=view.trend_points(last=ask.params["last"]), scope=view.scope)

    async def cache(self, ask: Ask) -> s.CacheReport:
        """GET cache."""
        metrics = await self._cache_stats(ask.part)
        warmer = self.source.warmer
        fleet_warm = None
        if warmer is not None and warmer.lease is not None:
            fleet_warm = await self._optional(self._part("cache", warmer.lease.last))
        return s.CacheReport(
            metrics=metrics,
            warmers=warmer.names if warmer is not None else [],
            last_warm=list(warmer.last_results) if warmer is not None else [],
            fleet_warm=fleet_warm,
        )

    async def jobs(self, ask: Ask) -> s.JobsReport:
        """GET jobs."""
        return await self._jobs_report(ask.part)

    async def jobs_failed(self, ask: Ask) -> s.FailedJobsReport:
        """GET jobs/failed."""
        params = ask.params
        return await self._failed_page(ask.part, params["queue"], params["offset"], params["limit"])

    async def health(self, ask: Ask) -> Response:
        """GET health: 200 unless a required dependency is down (503)."""
        status, _ = await self._dependencies()
        return Response.json(s.Health(status=status), 503 if status == "down" else 200)

    async def health_detailed(self, ask: Ask) -> Response:
        """GET health/detailed: each dependency; 503 when a required one is down."""
        status, checks = await self._dependencies()
        body = s.DetailedHealth(
            status=status, uptime_s=time.time() - process_start_time(), dependencies=checks
        )
        return Response.json(body, 503 if status == "down" else 200)

    async def metrics(self, ask: Ask) -> Response:
        """GET metrics: the Prometheus text exposition (OpenMetrics when the scraper's
        Accept header asks for it)."""
        await self._refresh_all()
        openmetrics = wants_openmetrics(ask.request.headers.get("accept"))
        view = await self._fleet()
        metrics = view.metrics
        jobs = self.source.jobs
        if jobs is not None:
            # Totals every worker adds to in Redis: the fleet's already, added beside it.
            with contextlib.suppress(AdminError):
                series = await self._part("jobs", jobs.job_metric_series)
                metrics = [*metrics, *job_snapshots(series)]
        text = render(metrics, openmetrics=openmetrics)
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else CONTENT_TYPE
        return Response(headers=[("content-type", content_type)], body=text.encode())

    # -- POST routes ------------------------------------------------------------------------

    async def cache_warm(self, ask: Ask) -> s.WarmReport:
        """POST cache/warm."""
        warmer, body = ask.part, ask.body
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

    async def cache_invalidate(self, ask: Ask) -> s.InvalidateResult:
        """POST cache/invalidate."""
        cache, body = ask.part, ask.body
        deleted = 0
        if body.pattern is not msgspec.UNSET:
            deleted = await self._part("cache", cache.invalidate_pattern, body.pattern)
        tags = body.tags if body.tags is not msgspec.UNSET else []
        if tags:
            await self._part("cache", cache.invalidate_tags, tags)
        _log.info("admin.cache_invalidated", deleted=deleted, tags=len(tags))
        return s.InvalidateResult(deleted=deleted, tags=len(set(tags)))

    async def jobs_retry(self, ask: Ask) -> s.RetryResult:
        """POST jobs/retry."""
        jobs, body = ask.part, ask.body
        queues = self._queues(body.queue)
        if body.job_id is None:
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

    async def jobs_cancel(self, ask: Ask) -> s.CancelResult:
        """POST jobs/cancel."""
        jobs, job_id = ask.part, ask.body.job_id
        try:
            await self._part("jobs", jobs.job_status, job_id)
        except JobError:
            raise AdminError(404, "not_found", f"job_id: no job {job_id!r}") from None
        try:
            was = await self._part("jobs", jobs.cancel, job_id)
        except JobError as exc:
            raise AdminError(409, "conflict", f"job_id: {exc}") from None
        _log.info("admin.job_canceled", job_id=job_id, was=was)
        return s.CancelResult(job_id=job_id, was=was)

    async def jobs_clear(self, ask: Ask) -> s.ClearResult:
        """POST jobs/clear."""
        queues = self._queues(ask.body.queue)
        cleared = await self._part("jobs", ask.part.clear_completed, queues)
        _log.info("admin.jobs_cleared", cleared=cleared, queues=queues)
        return s.ClearResult(cleared=cleared)

    async def metrics_reset(self, ask: Ask) -> s.ResetResult:
        """POST metrics/reset: zero the query statistics (N+1 findings too) and the cache
        counters."""
        reset = []
        if self.source.pool is not None:
            self.source.pool.reset_stats()
            get_n_plus_one_detector().reset()
            reset.append("queries")
        if self.source.cache is not None:
            self.source.cache.reset_stats()
            reset.append("cache")
        _log.info("admin.metrics_reset", reset=reset)
        return s.ResetResult(reset=reset)
