"""perfkit.metrics: registry, Prometheus exposition, request and compression middleware,
trends, recommendations and the periodic performance log (see docs/metrics.md).

Nothing here starts a thread or touches the network on import.
"""

from perfkit.metrics.aggregate import AsyncSnapshotStore, SnapshotPusher, SnapshotStore
from perfkit.metrics.collectors import CacheSource, JobsSource, PoolSource, StatsCollector
from perfkit.metrics.compression import CompressionMiddleware, WSGICompressionMiddleware
from perfkit.metrics.exposition import CONTENT_TYPE, render
from perfkit.metrics.middleware import MetricsMiddleware, WSGIMetricsMiddleware
from perfkit.metrics.monitor import PerformanceMonitor, PerformanceReport
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
from perfkit.metrics.requests import RequestMetrics, RequestSummary, SlowRequest
from perfkit.metrics.routes import collapse_path, route_template
from perfkit.metrics.snapshot import MetricSnapshot, ProcessSnapshot, Sample, merge
from perfkit.metrics.system import memory_limit, resident_memory
from perfkit.metrics.trends import TrendPoint, Trends, estimate_quantile

__all__ = [  # noqa: RUF022 - plain sorted(), as tests/test_exported_members.py checks
    "AsyncSnapshotStore",
    "BROTLI_AVAILABLE",
    "CONTENT_TYPE",
    "CacheRule",
    "CacheSource",
    "CompressionMiddleware",
    "Counter",
    "CounterChild",
    "DEFAULT_BUCKETS",
    "DEFAULT_CACHE_RULES",
    "Finding",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "JobsSource",
    "MetricSnapshot",
    "MetricsMiddleware",
    "MetricsRegistry",
    "OVERFLOW",
    "PerformanceLog",
    "PerformanceMonitor",
    "PerformanceReport",
    "PoolSource",
    "ProcessSnapshot",
    "RequestMetrics",
    "RequestSummary",
    "Sample",
    "SlowRequest",
    "SnapshotPusher",
    "SnapshotStore",
    "StatsCollector",
    "Thresholds",
    "TrendPoint",
    "Trends",
    "WSGICompressionMiddleware",
    "WSGIMetricsMiddleware",
    "choose_encoding",
    "collapse_path",
    "estimate_quantile",
    "etag_matches",
    "memory_limit",
    "merge",
    "recommend",
    "render",
    "resident_memory",
    "route_template",
]
