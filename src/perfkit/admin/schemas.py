"""Request bodies and response documents of the admin API (msgspec Structs).

These are the schemas ``openapi.json`` publishes; the parts' own Structs
(``CacheStats``, ``TimedPoolStats``, ``QueueStats``, ``FailedJob``, ``TrendPoint``,
``Finding`` ...) are embedded as they are, so their docs tables describe the fields.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from perfkit.cache import CacheStats, WarmResult
from perfkit.cache.warmer import WarmRecord
from perfkit.jobs import JobMetrics, QueueStats
from perfkit.jobs.failed import FailedJob
from perfkit.jobs.periodic import PeriodicRun
from perfkit.jobs.progress import RunningJob
from perfkit.metrics import Finding, RequestSummary, SlowRequest, TrendPoint
from perfkit.metrics.fleet import FleetProcess
from perfkit.queries import NPlusOne, PoolStats, QueryStatsSnapshot

__all__ = [
    "CacheReport",
    "CancelBody",
    "CancelResult",
    "ClearBody",
    "ClearResult",
    "DashboardReport",
    "DatabaseReport",
    "Dependency",
    "DetailedHealth",
    "FailedJobsReport",
    "Health",
    "InvalidateBody",
    "InvalidateResult",
    "JobsReport",
    "MemoryReport",
    "RealtimeReport",
    "ResetBody",
    "ResetResult",
    "RetryBody",
    "RetryResult",
    "SummaryReport",
    "TrendsReport",
    "WarmBody",
    "WarmReport",
]

CHOICES = "x-perfkit-choices"
"""Marks a string whose values are the app's own (``queues``, ``warmers``): the OpenAPI
document publishes them as its ``enum`` (:func:`perfkit.admin.openapi.document`), and
the handlers refuse any other with 400."""

# Names that reach Redis keys: short, printable, no glob or whitespace surprises.
_NAME = r"^[A-Za-z0-9_.:\-]+$"
QueueName = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=100, pattern=_NAME, extra_json_schema={CHOICES: "queues"}
    ),
]
JobId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=_NAME)]
Pattern = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
WarmerName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=200, extra_json_schema={CHOICES: "warmers"})
]
HealthStatus = Literal["ok", "degraded", "down"]
# "fleet": merged over every live process (and the retired totals); "process": this
# process alone (no Redis for the fleet view, or Redis away).
Scope = Literal["fleet", "process"]


# The most bytes one character can take in JSON: an astral one escaped as a surrogate pair
# ("\\ud83d\\ude00"), as encoders that keep to ASCII (Python's json, schemathesis) write it.
_CHAR_BYTES = 12
_NUMBER_BYTES = 32


@functools.cache
def largest_body(body: type) -> int:
    """The most bytes a JSON body that ``body``'s schema allows can take, so the admin can
    read any such body whatever PERFKIT_ADMIN_MAX_BODY says: a body the document allows is
    never answered 413 (only one larger than any it allows)."""
    schema = msgspec.json.schema(body)
    definitions = schema.get("$defs", {})

    def largest(node: dict[str, Any]) -> int:
        if "$ref" in node:
            return largest(definitions[node["$ref"].rpartition("/")[2]])
        if "anyOf" in node:
            return max(largest(option) for option in node["anyOf"])
        kind = node.get("type")
        if kind == "object":
            fields = node.get("properties", {})
            return 2 + sum(
                len(name) * _CHAR_BYTES + 4 + largest(value) for name, value in fields.items()
            )
        if kind == "array":
            return 2 + int(node["maxItems"]) * (largest(node["items"]) + 1)
        if kind == "string":
            return 2 + int(node["maxLength"]) * _CHAR_BYTES
        return _NUMBER_BYTES  # null, booleans and numbers

    return largest(schema)


class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Request bodies refuse fields they do not know (a typo must not be ignored).

    ``min_fields``: how many fields must be given (the document's ``minProperties``;
    the fields of such a body are not nullable, absent is ``UNSET``)."""

    min_fields: ClassVar[int] = 0


class ResetBody(_Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST metrics/reset: no fields (an empty body or ``{}``)."""


class WarmBody(_Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST cache/warm: the warmers to run (all when ``names`` is absent)."""

    names: Annotated[list[WarmerName], msgspec.Meta(max_length=100)] | None = None


class InvalidateBody(_Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST cache/invalidate: a glob ``pattern`` of keys and/or ``tags`` (at least one)."""

    min_fields: ClassVar[int] = 1
    pattern: Pattern | msgspec.UnsetType = msgspec.UNSET
    tags: Annotated[list[Tag], msgspec.Meta(min_length=1, max_length=1000)] | msgspec.UnsetType = (
        msgspec.UNSET
    )


class RetryBody(_Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST jobs/retry: one failed job by id, or every failed job (of ``queue`` if given)."""

    job_id: JobId | None = None
    queue: QueueName | None = None


class CancelBody(_Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST jobs/cancel: the job to cancel."""

    job_id: JobId


class ClearBody(_Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST jobs/clear: delete the completed jobs (of ``queue`` if given)."""

    queue: QueueName | None = None


class MemoryReport(msgspec.Struct, frozen=True, kw_only=True):
    """Resident memory of this process, its limit (cgroup or configured) and their ratio."""

    rss_bytes: int
    limit_bytes: int | None
    ratio: float | None


class SummaryReport(msgspec.Struct, frozen=True, kw_only=True):
    """GET summary: the headline numbers and the findings.

    ``requests`` and ``slow_query_pct`` are the fleet's (see ``scope``; ``processes`` is
    how many are live); ``memory`` and ``uptime_s`` are the answering process's.
    """

    at: float
    uptime_s: float
    requests: RequestSummary
    memory: MemoryReport
    cache_hit_rate: float | None
    slow_query_pct: float | None
    queue_depth: int | None
    failed_jobs: int | None
    recommendations: list[Finding]
    scope: Scope = "process"
    processes: int = 1


class DatabaseReport(msgspec.Struct, frozen=True, kw_only=True):
    """The pool and its statement statistics (``queries.by_fingerprint`` cut to the top).

    ``queries`` are the fleet's, merged by fingerprint (see ``scope``); ``pool`` is the
    answering process's own pool, ``null`` when the database source has none to read
    (Django without its pool).
    """

    pool: PoolStats | None
    queries: QueryStatsSnapshot
    scope: Scope = "process"
    n_plus_one: list[NPlusOne] = []  # N+1 findings, the fleet's (docs/queries.md)


class JobsReport(msgspec.Struct, frozen=True, kw_only=True):
    """GET jobs: per-queue counts and health, the newest failures, overall health, the
    periodic jobs' schedule with their last and next runs, the jobs running now with
    their progress, and the job metrics per processor and queue (every worker's)."""

    status: Literal["healthy", "degraded"]
    queues: list[QueueStats]
    recent_failures: list[FailedJob]
    periodic: list[PeriodicRun] = []
    running: list[RunningJob] = []
    metrics: list[JobMetrics] = []


class DashboardReport(msgspec.Struct, frozen=True, kw_only=True):
    """GET dashboard: everything at once (a part not configured is ``null``).

    ``api``, ``slowest_requests``, ``database.queries`` and ``trends`` are the fleet's
    (see ``scope``), ``processes`` the live processes; ``system`` and ``uptime_s`` are the
    answering process's.
    """

    at: float
    uptime_s: float
    api: RequestSummary
    slowest_requests: list[SlowRequest]
    database: DatabaseReport | None
    system: MemoryReport
    cache: CacheStats | None
    jobs: JobsReport | None
    recommendations: list[Finding]
    trends: list[TrendPoint]
    scope: Scope = "process"
    processes: list[FleetProcess] = []


DependencyName = Literal["redis", "database", "jobs"]


class Dependency(msgspec.Struct, frozen=True, kw_only=True):
    """One dependency's check: ``error`` is the exception's type name only."""

    name: DependencyName
    status: Literal["up", "down"]
    required: bool
    latency_ms: float | None
    error: str | None = None


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """GET health: ``down`` (HTTP 503) when a required dependency is down."""

    status: HealthStatus


class DetailedHealth(msgspec.Struct, frozen=True, kw_only=True):
    """GET health/detailed: each dependency's status and latency."""

    status: HealthStatus
    uptime_s: float
    dependencies: list[Dependency]


class RealtimeReport(msgspec.Struct, frozen=True, kw_only=True):
    """GET realtime: connections in use, memory, uptime, Redis status, requests in flight.

    ``requests_in_flight`` is the fleet's, ``processes`` each live process (see
    ``scope``); the rest is the answering process's.
    """

    at: float
    uptime_s: float
    memory: MemoryReport
    requests_in_flight: int
    database: PoolStats | None
    redis: Dependency | None
    scope: Scope = "process"
    processes: list[FleetProcess] = []


class CacheReport(msgspec.Struct, frozen=True, kw_only=True):
    """GET cache: the cache's stats (field ``metrics``, its name before the stats were
    called stats), the registered warmers and their last results in this process;
    ``fleet_warm`` is the fleet's last scheduled warm-up (which process ran it and when),
    ``null`` before the first one or without a Redis lease."""

    metrics: CacheStats
    warmers: list[str]
    last_warm: list[WarmResult]
    fleet_warm: WarmRecord | None = None


class TrendsReport(msgspec.Struct, frozen=True, kw_only=True):
    """GET trends: one point per minute, oldest first, merged over the fleet (``scope``).

    Each process publishes its last hour; older minutes come from the answering process
    and the retired totals.
    """

    points: list[TrendPoint]
    scope: Scope = "process"


class FailedJobsReport(msgspec.Struct, frozen=True, kw_only=True):
    """GET jobs/failed: a page of failed jobs, newest first; ``total`` from counters."""

    queue: str | None
    total: int
    offset: int
    limit: int
    jobs: list[FailedJob]


class WarmReport(msgspec.Struct, frozen=True, kw_only=True):
    """POST cache/warm: one result per warmer run; ``ok`` when all succeeded."""

    ok: bool
    results: list[WarmResult]


class InvalidateResult(msgspec.Struct, frozen=True, kw_only=True):
    """POST cache/invalidate: keys deleted by the pattern, tags invalidated."""

    deleted: int
    tags: int


class RetryResult(msgspec.Struct, frozen=True, kw_only=True):
    """POST jobs/retry: how many failed jobs were put back on their queue."""

    requeued: int


class CancelResult(msgspec.Struct, frozen=True, kw_only=True):
    """POST jobs/cancel: the status the job had (``started``: its worker was asked to stop
    it; otherwise it is ``canceled`` now)."""

    job_id: str
    was: str


class ClearResult(msgspec.Struct, frozen=True, kw_only=True):
    """POST jobs/clear: how many completed jobs were deleted."""

    cleared: int


class ResetResult(msgspec.Struct, frozen=True, kw_only=True):
    """POST metrics/reset: which statistics were zeroed."""

    reset: list[str]
