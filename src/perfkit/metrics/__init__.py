"""perfkit.metrics: registry, Prometheus exposition, request and compression middleware,
trends, recommendations and the periodic performance log (see docs/metrics.md).

Nothing here starts a thread or touches the network on import.
"""

from perfkit._histogram import log_bounds
from perfkit._stat_kinds import CounterField, DurationField, GaugeField
from perfkit.metrics.aggregate import AsyncSnapshotStore, SnapshotPusher, SnapshotStore
from perfkit.metrics.collectors import StatsCollector, StatsSource
from perfkit.metrics.compression import CompressionMiddleware, WSGICompressionMiddleware
from perfkit.metrics.exposition import (
    CONTENT_TYPE,
    OPENMETRICS_CONTENT_TYPE,
    render,
    wants_openmetrics,
)
from perfkit.metrics.fleet import Fleet, FleetProcess, FleetView, ProcessState
from perfkit.metrics.middleware import MetricsMiddleware, WSGIMetricsMiddleware
from perfkit.metrics.monitor import AsyncPerformanceMonitor, PerformanceMonitor, PerformanceReport
from perfkit.metrics.negotiation import (
    BROTLI_AVAILABLE,
    DEFAULT_CACHE_RULES,
    CacheRule,
    choose_encoding,
    etag_matches,
)
from perfkit.metrics.perflog import PerformanceLog
from perfkit.metrics.recommendations import Finding, Thresholds, recommend
from perfkit.metrics.registry import (
    DEFAULT_BUCKETS,
    OVERFLOW,
    Counter,
    CounterChild,
    Gauge,
    GaugeChild,
    Histogram,
    HistogramChild,
    MetricsRegistry,
)
from perfkit.metrics.requests import RequestMetrics, RequestSummary, SlowRequest, summarize
from perfkit.metrics.routes import (
    DEFAULT_EXCLUDE,
    PENDING,
    UNMATCHED,
    Exclude,
    collapse_path,
    exclusion,
    route_label,
    route_template,
)
from perfkit.metrics.snapshot import MetricSnapshot, ProcessSnapshot, Sample, merge
from perfkit.metrics.system import memory_limit, resident_memory
from perfkit.metrics.trends import (
    TrendBucket,
    TrendPoint,
    Trends,
    estimate_quantile,
    merge_buckets,
    merge_trends,
)

__all__ = [  # noqa: RUF022 - plain sorted(), as tests/test_exported_members.py checks
    "AsyncPerformanceMonitor",
    "AsyncSnapshotStore",
    "BROTLI_AVAILABLE",
    "CONTENT_TYPE",
    "CacheRule",
    "CompressionMiddleware",
    "Counter",
    "CounterChild",
    "CounterField",
    "DEFAULT_BUCKETS",
    "DEFAULT_CACHE_RULES",
    "DEFAULT_EXCLUDE",
    "DurationField",
    "Exclude",
    "Finding",
    "Fleet",
    "FleetProcess",
    "FleetView",
    "Gauge",
    "GaugeChild",
    "GaugeField",
    "Histogram",
    "HistogramChild",
    "MetricSnapshot",
    "MetricsMiddleware",
    "MetricsRegistry",
    "OPENMETRICS_CONTENT_TYPE",
    "OVERFLOW",
    "PENDING",
    "PerformanceLog",
    "PerformanceMonitor",
    "PerformanceReport",
    "ProcessSnapshot",
    "ProcessState",
    "RequestMetrics",
    "RequestSummary",
    "Sample",
    "SlowRequest",
    "SnapshotPusher",
    "SnapshotStore",
    "StatsCollector",
    "StatsSource",
    "Thresholds",
    "TrendBucket",
    "TrendPoint",
    "Trends",
    "UNMATCHED",
    "WSGICompressionMiddleware",
    "WSGIMetricsMiddleware",
    "choose_encoding",
    "collapse_path",
    "estimate_quantile",
    "etag_matches",
    "exclusion",
    "log_bounds",
    "memory_limit",
    "merge",
    "merge_buckets",
    "merge_trends",
    "recommend",
    "render",
    "resident_memory",
    "route_label",
    "route_template",
    "summarize",
    "wants_openmetrics",
]


def __getattr__(name: str) -> object:
    # Deprecated names, one release (see CHANGELOG.md): the three source protocols are one.
    if name in ("CacheSource", "JobsSource", "PoolSource"):
        from perfkit._deprecation import renamed

        renamed(f"perfkit.metrics.{name}", "perfkit.metrics.StatsSource")
        return StatsSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
