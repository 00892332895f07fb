"""perfkit.metrics: registry, Prometheus exposition, request metrics, the stats of the
parts, trends, recommendations, the periodic performance log and one exposition for
several processes (see docs/metrics.md).

The HTTP middleware (compression, ETag, request timing) is :mod:`perfkit.http`; the fleet
view is :mod:`perfkit.metrics.fleet` (it merges statements, so it imports
:mod:`perfkit.queries`, which this package does not). What an application uses is
exported here; the rest from the submodules.

Nothing here starts a thread or touches the network on import.
"""

from perfkit._histogram import log_bounds
from perfkit._stat_kinds import CounterField, DurationField, GaugeField
from perfkit.metrics.aggregate import AsyncSnapshotStore, SnapshotPusher, SnapshotStore
from perfkit.metrics.collectors import StatsCollector, StatsSource
from perfkit.metrics.exposition import CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE, wants_openmetrics
from perfkit.metrics.monitor import AsyncPerformanceMonitor, PerformanceMonitor, PerformanceReport
from perfkit.metrics.perflog import PerformanceLog
from perfkit.metrics.recommendations import Finding, Thresholds
from perfkit.metrics.registry import DEFAULT_BUCKETS, Counter, Gauge, Histogram, MetricsRegistry
from perfkit.metrics.requests import RequestMetrics, RequestSummary, SlowRequest
from perfkit.metrics.snapshot import MetricSnapshot, Sample
from perfkit.metrics.trends import TrendPoint, Trends

__all__ = [  # noqa: RUF022 - plain sorted(), as tests/test_exported_members.py checks
    "AsyncPerformanceMonitor",
    "AsyncSnapshotStore",
    "CONTENT_TYPE",
    "Counter",
    "CounterField",
    "DEFAULT_BUCKETS",
    "DurationField",
    "Finding",
    "Gauge",
    "GaugeField",
    "Histogram",
    "MetricSnapshot",
    "MetricsRegistry",
    "OPENMETRICS_CONTENT_TYPE",
    "PerformanceLog",
    "PerformanceMonitor",
    "PerformanceReport",
    "RequestMetrics",
    "RequestSummary",
    "Sample",
    "SlowRequest",
    "SnapshotPusher",
    "SnapshotStore",
    "StatsCollector",
    "StatsSource",
    "Thresholds",
    "TrendPoint",
    "Trends",
    "log_bounds",
    "wants_openmetrics",
]
