"""One object that ties the metrics together for an app: registry, request metrics,
the sources (cache, pool, jobs), trends, recommendations and the exposition."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from perfkit._acompat import resolve
from perfkit.http.compression import CompressionMiddleware, WSGICompressionMiddleware
from perfkit.http.middleware import MetricsMiddleware, WSGIMetricsMiddleware
from perfkit.http.routes import DEFAULT_EXCLUDE, Exclude
from perfkit.metrics.collectors import StatsCollector, StatsSource
from perfkit.metrics.nplusone import n_plus_one_detector, n_plus_one_metrics
from perfkit.metrics.recommendations import Finding, Thresholds, recommend, recommend_n_plus_one
from perfkit.metrics.registry import DEFAULT_BUCKETS, MetricsRegistry
from perfkit.metrics.requests import RequestMetrics, RequestSummary, SlowRequest
from perfkit.metrics.system import memory_limit, process_start_time, resident_memory
from perfkit.metrics.trends import TrendPoint, Trends
from perfkit.settings import Settings
from perfkit.types import ASGIApp, WSGIApp

if TYPE_CHECKING:  # perfkit.queries (and psycopg) is not imported with the metrics
    from perfkit.queries import NPlusOne
    from perfkit.queries._plan import QueryPlan

__all__ = ["AsyncPerformanceMonitor", "PerformanceMonitor", "PerformanceReport"]

_log = structlog.get_logger("perfkit.metrics")


class PerformanceReport(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the monitor knows at one moment (source values as of the last refresh).

    ``memory_ratio`` is RSS over the limit (``None`` without a limit); source fields are
    ``None`` when that source is not given or has no data yet.
    """

    at: float
    uptime_s: float
    requests: RequestSummary
    slowest: list[SlowRequest]
    memory_rss: int
    memory_limit: int | None
    memory_ratio: float | None
    cache_hit_rate: float | None
    slow_query_pct: float | None
    queue_depth: int | None
    failed_jobs: int | None
    findings: list[Finding]


class PerformanceMonitor:
    """Request metrics, source collectors, trends and recommendations for one app.

    ``cache`` (perfkit.cache, sync or async), ``pool`` (perfkit.queries) and ``jobs``
    (perfkit.jobs) are :class:`~perfkit.metrics.collectors.StatsSource` s, read the same
    way: ``stats()``. Their collectors are ``cache_collector``, ``pool_collector`` and
    ``jobs_collector``. ``memory_limit`` (bytes) is used when no cgroup limit is found.
    ``buckets``: the request duration histogram's and the trends' bounds (seconds),
    perfkit's layout by default; ``log_bounds(smallest)`` moves its 50 µs floor.
    """

    def __init__(
        self,
        *,
        registry: MetricsRegistry | None = None,
        settings: Settings | None = None,
        cache: StatsSource | None = None,
        pool: StatsSource | None = None,
        jobs: StatsSource | None = None,
        thresholds: Thresholds | None = None,
        memory_limit: int | None = None,
        trends: Trends | None = None,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env(part="metrics")
        self.registry = registry or MetricsRegistry()
        self.trends = trends or Trends(buckets=buckets)
        self.thresholds = thresholds or Thresholds()
        self.configured_memory_limit = memory_limit
        self.requests = RequestMetrics(
            self.registry,
            slow_request_ms=self.settings.slow_request_ms,
            trends=self.trends,
            buckets=tuple(buckets),
        )
        self.cache_collector = self._collector("perfkit_cache", cache)
        self.pool_collector = self._collector("perfkit_db", pool)
        self.jobs_collector = self._collector("perfkit_jobs", jobs)
        self.registry.register_collector(n_plus_one_metrics)

    def _collector(self, prefix: str, source: StatsSource | None) -> StatsCollector | None:
        if source is None:
            return None
        collector = StatsCollector(prefix, source.stats)
        self.registry.register_collector(collector)
        return collector

    @property
    def sources(self) -> list[StatsCollector]:
        """The collectors of the sources given."""
        collectors = (self.cache_collector, self.pool_collector, self.jobs_collector)
        return [c for c in collectors if c is not None]

    def asgi(
        self,
        app: ASGIApp,
        *,
        compress: bool = True,
        exclude: Exclude | None = DEFAULT_EXCLUDE,
        **options: Any,
    ) -> ASGIApp:
        """``app`` wrapped in request metrics (outside) and compression (inside).

        ``exclude``: paths not measured (see :class:`MetricsMiddleware`); ``options`` go
        to the compression middleware.
        """
        inner = CompressionMiddleware(app, **options) if compress else app
        return MetricsMiddleware(inner, metrics=self.requests, exclude=exclude)

    def wsgi(
        self,
        app: WSGIApp,
        *,
        compress: bool = True,
        exclude: Exclude | None = DEFAULT_EXCLUDE,
        **options: Any,
    ) -> WSGIApp:
        """``app`` wrapped in request metrics (outside) and compression (inside), as
        :meth:`asgi`."""
        inner = WSGICompressionMiddleware(app, **options) if compress else app
        return WSGIMetricsMiddleware(inner, metrics=self.requests, exclude=exclude)

    def refresh(self) -> None:
        """Read every sync source now; a failing source is logged and keeps its last value.
        Async sources are left to :class:`AsyncPerformanceMonitor` (they keep their last
        value here)."""
        for collector in self.sources:
            if collector.asynchronous:
                continue
            try:
                collector.refresh()
            except Exception as exc:
                if collector.asynchronous:
                    continue
                _log.warning("metrics.source_failed", source=collector.prefix, error=repr(exc))

    def exposition(self, *, openmetrics: bool = False) -> str:
        """Refresh the sync sources and render the whole registry (Prometheus 0.0.4, or
        OpenMetrics 1.0)."""
        self.refresh()
        return self.registry.exposition(openmetrics=openmetrics)

    def report(
        self,
        *,
        requests: RequestSummary | None = None,
        slowest: list[SlowRequest] | None = None,
        slow_query_pct: float | None = None,
        plans: list[QueryPlan] | None = None,
        n_plus_one: list[NPlusOne] | None = None,
    ) -> PerformanceReport:
        """Requests, memory, source values and findings (sources as last refreshed).

        ``requests``, ``slowest``, ``slow_query_pct``, ``plans`` (of slow statements) and
        ``n_plus_one`` replace this process's own (the admin passes the fleet's, see
        :mod:`perfkit.metrics.fleet`).
        """
        summary = requests if requests is not None else self.requests.summary()
        rss = resident_memory()
        limit = memory_limit(self.configured_memory_limit)
        ratio = rss / limit if limit else None
        hit_rate = self.cache_hit_rate()
        slow_pct = slow_query_pct if slow_query_pct is not None else self.slow_query_pct()
        depth, failed = self.job_counts()
        findings = recommend(
            avg_response_ms=summary.avg_ms,
            cache_hit_rate=hit_rate,
            slow_query_pct=slow_pct,
            memory_ratio=ratio,
            failed_jobs=failed,
            thresholds=self.thresholds,
            plans=plans if plans is not None else self.query_plans(),
        )
        detector = n_plus_one_detector()
        if detector is not None:
            findings += recommend_n_plus_one(
                n_plus_one if n_plus_one is not None else detector.findings(), detector.threshold
            )
        now = time.time()
        return PerformanceReport(
            at=now,
            uptime_s=now - process_start_time(),
            requests=summary,
            slowest=slowest if slowest is not None else self.requests.slowest(),
            memory_rss=rss,
            memory_limit=limit,
            memory_ratio=ratio,
            cache_hit_rate=hit_rate,
            slow_query_pct=slow_pct,
            queue_depth=depth,
            failed_jobs=failed,
            findings=findings,
        )

    def recommendations(self) -> list[Finding]:
        """The findings of :meth:`report`."""
        return self.report().findings

    def cache_hit_rate(self) -> float | None:
        """The cache's hit rate (0..1) as last refreshed, ``None`` before any lookup."""
        latest = self.cache_collector.latest if self.cache_collector else None
        if latest is None or getattr(latest, "hits", 0) + getattr(latest, "misses", 0) == 0:
            return None
        rate = getattr(latest, "hit_rate", None)
        return float(rate) if rate is not None else None

    def slow_query_pct(self) -> float | None:
        """Slow statements in % of all, as last refreshed, ``None`` before any statement."""
        latest = self.pool_collector.latest if self.pool_collector else None
        queries = getattr(latest, "queries", latest)
        if queries is None or not getattr(queries, "count", 0):
            return None
        pct = getattr(queries, "slow_pct", None)
        return float(pct) if pct is not None else None

    def query_plans(self) -> list[QueryPlan]:
        """The plans of slow statements, as last refreshed."""
        latest = self.pool_collector.latest if self.pool_collector else None
        queries = getattr(latest, "queries", latest)
        return list(getattr(queries, "plans", None) or [])

    def job_counts(self) -> tuple[int | None, int | None]:
        """Waiting and failed jobs over every queue, as last refreshed."""
        latest = self.jobs_collector.latest if self.jobs_collector else None
        if latest is None:
            return None, None
        queues = getattr(latest, "queues", latest)  # JobStats, or a list/mapping of queues
        if isinstance(queues, dict):
            queues = queues.values()
        waiting = sum(int(getattr(q, "waiting", 0)) for q in queues)
        failed = sum(int(getattr(q, "failed", 0)) for q in queues)
        return waiting, failed

    def sample_trends(self) -> None:
        """Put the sources' current values on the current trends bucket."""
        depth, _ = self.job_counts()
        self.trends.sample(
            cache_hit_rate=self.cache_hit_rate(),
            slow_query_pct=self.slow_query_pct(),
            queue_depth=depth,
        )

    def trend_points(self, *, last: int | None = None) -> list[TrendPoint]:
        """The trends, oldest bucket first (see :meth:`Trends.points`)."""
        return self.trends.points(last=last)


class AsyncPerformanceMonitor:
    """The async twin of a :class:`PerformanceMonitor`: the same registry and sources, with
    the same method names, awaited; it reads async sources too (sync ones in the loop, as
    they are quick reads of counters)."""

    def __init__(self, monitor: PerformanceMonitor) -> None:
        self.monitor = monitor

    @classmethod
    def of(cls, monitor: PerformanceMonitor) -> AsyncPerformanceMonitor:
        """The async twin of ``monitor``."""
        return cls(monitor)

    async def refresh(self) -> None:
        """Read every source now (sync or async); a failing source is logged and keeps its
        last value."""
        for collector in self.monitor.sources:
            try:
                collector.keep(await resolve(collector.fetch()))
            except Exception as exc:
                _log.warning("metrics.source_failed", source=collector.prefix, error=repr(exc))

    async def exposition(self, *, openmetrics: bool = False) -> str:
        """Refresh every source and render the whole registry (Prometheus 0.0.4, or
        OpenMetrics 1.0)."""
        await self.refresh()
        return self.monitor.registry.exposition(openmetrics=openmetrics)
