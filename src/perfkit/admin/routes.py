"""The admin API's routes: one table of handler callables, their query parameters, the
part each needs and its response type. Dispatch, validation, the 404 "not configured"
answer, the OpenAPI document and the docs all read it, so a route cannot exist without
being described."""

from __future__ import annotations

from typing import Any

from perfkit.admin import schemas as s
from perfkit.admin.handlers import Ask, Handlers
from perfkit.admin.http import Response
from perfkit.admin.openapi import document
from perfkit.admin.params import QUEUE, Integer
from perfkit.admin.source import AdminSource
from perfkit.admin.spec import CACHE, JOBS, POOL, WARMING, Param, Route
from perfkit.metrics import CONTENT_TYPE

__all__ = ["ROUTES", "openapi_document"]


def openapi_document(source: AdminSource, *, server: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``source``'s admin API, mounted at ``server``."""
    warmers = source.warmer.names if source.warmer is not None else ()
    return document(ROUTES, queues=source.queues, warmers=warmers,
                    health_open=source.health_open, server=server)  # fmt: skip


async def openapi(handlers: Handlers, ask: Ask) -> Response:
    """GET openapi.json."""
    return Response.json(openapi_document(handlers.source, server=ask.request.mount))


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "",
        Handlers.page,
        "The HTML dashboard (a static page; its data fetches carry the token).",
        str,
        access="page",
        content_type="text/html",
    ),
    Route("GET", "/openapi.json", openapi, "This OpenAPI 3.1 document.", dict),
    Route(
        "GET",
        "/summary",
        Handlers.summary,
        "Headline numbers and recommendations.",
        s.SummaryReport,
    ),
    Route(
        "GET",
        "/dashboard",
        Handlers.dashboard,
        "API, database, system, cache and job performance, "
        "recommendations and the last hour's trends.",
        s.DashboardReport,
    ),
    Route(
        "GET",
        "/queries",
        Handlers.queries,
        "Statement times, slowest statements, counts, slow %.",
        s.DatabaseReport,
        part=POOL,
        params=(Param("top", "Statements listed, by total time.", Integer(1, 100, default=20)),),
    ),
    Route(
        "GET",
        "/realtime",
        Handlers.realtime,
        "Connections in use, memory, uptime, Redis status.",
        s.RealtimeReport,
    ),
    Route(
        "GET",
        "/trends",
        Handlers.trends,
        "Per-minute requests, response times and sampled values.",
        s.TrendsReport,
        params=(Param("last", "Minutes, newest last.", Integer(1, 1440, default=60)),),
    ),
    Route(
        "GET",
        "/cache",
        Handlers.cache,
        "Hit rate, Redis memory, key count, warmers.",
        s.CacheReport,
        part=CACHE,
    ),
    Route(
        "GET",
        "/jobs",
        Handlers.jobs,
        "Per-queue counts and health, the newest failures.",
        s.JobsReport,
        part=JOBS,
    ),
    Route(
        "GET",
        "/jobs/failed",
        Handlers.jobs_failed,
        "A page of failed jobs, newest first.",
        s.FailedJobsReport,
        part=JOBS,
        params=(
            Param("queue", "One queue (default: all, one page across them).", QUEUE),
            Param("offset", "Jobs to skip.", Integer(0, 100_000, default=0)),
            Param("limit", "Jobs on the page.", Integer(1, 100, default=20)),
        ),
    ),
    Route(
        "GET",
        "/health",
        Handlers.health,
        "ok / degraded / down (503 when a required dependency is down).",
        s.Health,
        access="health",
        errors=(503,),
    ),
    Route(
        "GET",
        "/health/detailed",
        Handlers.health_detailed,
        "Each dependency's status and latency (503 when a required one is down).",
        s.DetailedHealth,
        errors=(503,),
    ),
    Route(
        "GET",
        "/metrics",
        Handlers.metrics,
        "Prometheus text exposition.",
        str,
        content_type=CONTENT_TYPE,
    ),
    Route(
        "POST",
        "/cache/warm",
        Handlers.cache_warm,
        "Run all warmers, or those named.",
        s.WarmReport,
        body=s.WarmBody,
        part=WARMING,
    ),
    Route(
        "POST",
        "/cache/invalidate",
        Handlers.cache_invalidate,
        "Delete keys by glob pattern and/or invalidate tags.",
        s.InvalidateResult,
        body=s.InvalidateBody,
        part=CACHE,
    ),
    Route(
        "POST",
        "/jobs/retry",
        Handlers.jobs_retry,
        "Retry one failed job, or every failed job (of a queue).",
        s.RetryResult,
        body=s.RetryBody,
        part=JOBS,
        errors=(409,),
    ),
    Route(
        "POST",
        "/jobs/cancel",
        Handlers.jobs_cancel,
        "Cancel a job: never run it, or stop it if running.",
        s.CancelResult,
        body=s.CancelBody,
        part=JOBS,
        errors=(409,),
    ),
    Route(
        "POST",
        "/jobs/clear",
        Handlers.jobs_clear,
        "Delete the completed jobs (of a queue).",
        s.ClearResult,
        body=s.ClearBody,
        part=JOBS,
    ),
    Route(
        "POST",
        "/metrics/reset",
        Handlers.metrics_reset,
        "Zero the query statistics and the cache counters.",
        s.ResetResult,
        body=s.ResetBody,
    ),
)
