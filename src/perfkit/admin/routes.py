"""The admin API's routes: one table that dispatch, the OpenAPI document and the docs
all read, so a route cannot exist without being described."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from perfkit.admin import schemas as s
from perfkit.metrics import CONTENT_TYPE

__all__ = ["ROUTES", "Param", "Route"]

Access = Literal["admin", "health", "page"]


class Param(NamedTuple):
    """An integer or string query parameter."""

    name: str
    description: str
    minimum: int | None = None
    maximum: int | None = None
    default: int | None = None
    queue: bool = False  # a configured queue name


class Route(NamedTuple):
    """One route, relative to the mount point."""

    method: Literal["GET", "POST"]
    path: str
    handler: str
    summary: str
    response: Any
    body: Any = None
    params: tuple[Param, ...] = ()
    part: str | None = None  # 404 "not configured" without it; 503 when it is away
    access: Access = "admin"
    content_type: str = "application/json"
    errors: tuple[int, ...] = ()


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "",
        "page",
        "The HTML dashboard (a static page; its data fetches carry the token).",
        str,
        access="page",
        content_type="text/html",
    ),
    Route("GET", "/openapi.json", "openapi", "This OpenAPI 3.1 document.", dict),
    Route("GET", "/summary", "summary", "Headline numbers and recommendations.", s.SummaryReport),
    Route(
        "GET",
        "/dashboard",
        "dashboard",
        "API, database, system, cache and job performance, "
        "recommendations and the last hour's trends.",
        s.DashboardReport,
    ),
    Route(
        "GET",
        "/queries",
        "queries",
        "Statement times, slowest statements, counts, slow %.",
        s.DatabaseReport,
        part="database pool",
        params=(Param("top", "Statements listed, by total time.", 1, 100, 20),),
    ),
    Route(
        "GET",
        "/realtime",
        "realtime",
        "Connections in use, memory, uptime, Redis status.",
        s.RealtimeReport,
    ),
    Route(
        "GET",
        "/trends",
        "trends",
        "Per-minute requests, response times and sampled values.",
        s.TrendsReport,
        params=(Param("last", "Minutes, newest last.", 1, 1440, 60),),
    ),
    Route(
        "GET",
        "/cache",
        "cache",
        "Hit rate, Redis memory, key count, warmers.",
        s.CacheReport,
        part="cache",
    ),
    Route(
        "GET",
        "/jobs",
        "jobs",
        "Per-queue counts and health, the newest failures.",
        s.JobsReport,
        part="jobs",
    ),
    Route(
        "GET",
        "/jobs/failed",
        "jobs_failed",
        "A page of failed jobs, newest first.",
        s.FailedJobsReport,
        part="jobs",
        params=(
            Param("queue", "One queue (default: all; then offset+limit <= 200).", queue=True),
            Param("offset", "Jobs to skip.", 0, 100_000, 0),
            Param("limit", "Jobs on the page.", 1, 100, 20),
        ),
    ),
    Route(
        "GET",
        "/health",
        "health",
        "ok / degraded / down (503 when a required dependency is down).",
        s.Health,
        access="health",
        errors=(503,),
    ),
    Route(
        "GET",
        "/health/detailed",
        "health_detailed",
        "Each dependency's status and latency (503 when a required one is down).",
        s.DetailedHealth,
        errors=(503,),
    ),
    Route(
        "GET", "/metrics", "metrics", "Prometheus text exposition.", str, content_type=CONTENT_TYPE
    ),
    Route(
        "POST",
        "/cache/warm",
        "cache_warm",
        "Run all warmers, or those named.",
        s.WarmReport,
        body=s.WarmBody,
        part="cache warming",
    ),
    Route(
        "POST",
        "/cache/invalidate",
        "cache_invalidate",
        "Delete keys by glob pattern and/or invalidate tags.",
        s.InvalidateResult,
        body=s.InvalidateBody,
        part="cache",
    ),
    Route(
        "POST",
        "/jobs/retry",
        "jobs_retry",
        "Retry one failed job, or every failed job (of a queue).",
        s.RetryResult,
        body=s.RetryBody,
        part="jobs",
        errors=(409,),
    ),
    Route(
        "POST",
        "/jobs/clear",
        "jobs_clear",
        "Delete the completed jobs (of a queue).",
        s.ClearResult,
        body=s.ClearBody,
        part="jobs",
    ),
    Route(
        "POST",
        "/metrics/reset",
        "metrics_reset",
        "Zero the query statistics and the cache counters.",
        s.ResetResult,
        body=s.ResetBody,
    ),
)
