"""The public names of perfkit, pinned, so that a change to the public API is deliberate.

Each public package's and integration module's ``__all__`` is written out below. Adding,
removing or moving a name fails here until the pin and CHANGELOG.md say so;
tests/test_exported_members.py checks that ``__all__`` is what a module defines.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import perfkit

# fmt: off
PUBLIC: dict[str, list[str]] = {
    "perfkit": [
        "ArgumentError", "ArgumentTypeError", "CacheError", "ConfigError", "JobArgumentError",
        "JobCancelledError", "JobError", "MetricsError", "PayloadError", "Perfkit",
        "PerfkitError", "PermanentJobError", "QueryError", "Settings", "__version__",
    ],
    "perfkit.settings": [
        "PARTS", "Part", "Settings", "check_cache_namespace", "check_database_url",
        "check_redis_url", "redacted_url",
    ],
    "perfkit.types": [
        "ASGIApp", "Environ", "ExcInfo", "Message", "Receive", "Scope", "Send", "StartResponse",
        "WSGIApp",
    ],
    "perfkit.cache": [
        "AsyncCacheWarmer", "AsyncCachedFunction", "AsyncRedisService", "CacheStats",
        "CacheWarmer", "CachedFunction", "CachedQueryDecorator", "NearCache", "RedisService",
        "Serializer", "WarmResult", "cached_query", "default_warmer", "get_default_cache",
        "register_warmer", "set_default_cache",
    ],
    "perfkit.queries": [
        "AsyncKeysetPagination", "AsyncOffsetPagination", "AsyncTimedPool", "CallSite",
        "DatabaseSource", "DatabaseStats", "ExplainSettings", "ExplainStats", "Fingerprint",
        "KeysetPage", "KeysetPagination", "NPlusOne", "NPlusOneDetector", "OffsetPage",
        "OffsetPagination", "PlanNode", "PlanSampler", "PoolStats", "QueryPlan", "QueryStats",
        "QueryStatsSnapshot", "SlowQuery", "StatementStats", "TimedPool", "TimedPoolStats",
        "get_n_plus_one_detector", "normalize_sql", "set_n_plus_one_detector", "unit_of_work",
    ],
    "perfkit.jobs": [
        "JobMetrics", "JobService", "JobStats", "PermanentJobError", "Priority", "QueueStats",
        "allow_jobs", "check_cancelled", "make_worker", "periodic", "processor",
        "report_progress",
    ],
    "perfkit.jobs.builtins": [
        "CacheWarmPayload", "DataExportPayload", "DeliveryReport", "EmailMessage",
        "EmailPayload", "EmailSender", "ExportReport", "LogEmailSender", "LogNotificationSink",
        "NotificationPayload", "NotificationSink", "RedisNotificationSink", "SMTPEmailSender",
        "register_email_template", "register_export_query", "set_email_sender",
        "set_export_directory", "set_export_pool", "set_notification_sink",
    ],
    "perfkit.metrics": [
        "AsyncPerformanceMonitor", "AsyncSnapshotStore", "CONTENT_TYPE", "Counter",
        "CounterField", "DEFAULT_BUCKETS", "DurationField", "Finding", "Gauge", "GaugeField",
        "Histogram", "MetricSnapshot", "MetricsRegistry", "OPENMETRICS_CONTENT_TYPE",
        "PerformanceLog", "PerformanceMonitor", "PerformanceReport", "RequestMetrics",
        "RequestSummary", "Sample", "SlowRequest", "SnapshotPusher", "SnapshotStore",
        "StatsCollector", "StatsSource", "Thresholds", "TrendPoint", "Trends", "log_bounds",
        "wants_openmetrics",
    ],
    "perfkit.http": [
        "BROTLI_AVAILABLE", "CacheRule", "CompressionMiddleware", "DEFAULT_CACHE_RULES",
        "DEFAULT_EXCLUDE", "Exclude", "MetricsMiddleware", "UNMATCHED",
        "WSGICompressionMiddleware", "WSGIMetricsMiddleware",
    ],
    "perfkit.admin": [
        "ASGIAdmin", "Authorize", "Request", "WSGIAdmin", "mount_asgi", "mount_wsgi",
    ],
    "perfkit.contrib.sqlalchemy": [
        "EngineInstrumentation", "instrument",
    ],
    "perfkit.contrib.django.cache": [
        "BackendStats", "PerfkitCache",
    ],
    "perfkit.contrib.django.db": [
        "DjangoDatabase", "QueryTimer", "get_query_stats", "install", "pool_stats",
        "set_query_stats",
    ],
    "perfkit.contrib.django.middleware": [
        "RouteMiddleware",
    ],
    "perfkit.contrib.django.urls": [
        "admin_urls", "admin_view",
    ],
    "perfkit.otel": [
        "DatabaseMetrics", "MetricsBridge", "bridge_metrics", "instrument", "instrumented",
        "uninstrument",
    ],
}
# fmt: on

# Names a package leaves to a public submodule, where the docs tell an application to import
# them from (``from perfkit.jobs.limits import Concurrency``).
MOVED: dict[str, list[str]] = {
    "perfkit.jobs.allowlist": ["allowed_jobs"],
    "perfkit.jobs.asyncrunner": ["AsyncJobWorker"],
    "perfkit.jobs.failed": ["FailedJob", "FailedJobsPage"],
    "perfkit.jobs.limits": ["Concurrency", "Rate"],
    "perfkit.jobs.periodic": [
        "Periodic",
        "PeriodicRun",
        "PeriodicScheduler",
        "periodic_runs",
        "schedule",
    ],
    "perfkit.jobs.processor": ["Processor", "get_processor", "processors"],
    "perfkit.jobs.progress": ["JobProgress", "RunningJob"],
    "perfkit.jobs.queues": ["priority_queue", "worker_queue_names"],
    "perfkit.jobs.retry": ["retry_intervals"],
    "perfkit.jobs.serializer": ["JobSerializer"],
    "perfkit.jobs.worker": ["ForkingJobWorker", "JobWorker"],
    "perfkit.jobs.builtins.export": ["export_data"],
    "perfkit.jobs.builtins.mail": ["send_email"],
    "perfkit.jobs.builtins.notify": ["send_notification"],
    "perfkit.jobs.builtins.warming": ["warm_cache"],
    "perfkit.admin.auth": ["Guard"],
    "perfkit.admin.core": ["AdminCore"],
    "perfkit.admin.http": ["AdminError", "ErrorBody", "Response"],
    "perfkit.admin.routes": ["ROUTES", "openapi_document"],
    "perfkit.admin.source": ["AdminSource", "Dependency"],
    "perfkit.admin.spec": ["Route"],
}

_UPDATE = "if deliberate, update the pin in tests/test_public_names.py and CHANGELOG.md"


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_the_public_names_are_the_pinned_ones(name: str) -> None:
    exported = sorted(importlib.import_module(name).__all__)
    added = sorted(set(exported) - set(PUBLIC[name]))
    removed = sorted(set(PUBLIC[name]) - set(exported))
    assert exported == PUBLIC[name], f"{name}: added {added}, removed {removed}; {_UPDATE}"


def test_every_public_package_is_pinned() -> None:
    packages = {
        module.name
        for module in pkgutil.walk_packages(perfkit.__path__, "perfkit.")
        if module.ispkg and not any(part.startswith("_") for part in module.name.split("."))
    }
    exporting = {name for name in packages if hasattr(importlib.import_module(name), "__all__")}
    assert exporting - set(PUBLIC) == set(), f"a public package is not pinned; {_UPDATE}"


@pytest.mark.parametrize("name", sorted(MOVED))
def test_names_left_to_a_submodule_are_exported_there(name: str) -> None:
    module = importlib.import_module(name)
    package = name.rsplit(".", 1)[0]
    for attr in MOVED[name]:
        assert attr in module.__all__, f"{name} no longer exports {attr}; {_UPDATE}"
        assert attr not in PUBLIC[package], f"{attr} is both in {package} and {name}"
