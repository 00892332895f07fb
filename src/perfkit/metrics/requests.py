"""Per-route request metrics: what the ASGI and WSGI request middleware share (no I/O).

Metrics (route = the host's route template, ``<unmatched>`` for a 404/405 no route
matched, else the path with ids collapsed):

- ``http_request_duration_seconds`` histogram {method, route}, to the last byte sent
- ``http_requests_total`` counter {method, route, status_class}
- ``http_request_errors_total`` counter {method, route}: 5xx responses and exceptions
- ``http_slow_requests_total`` counter {method, route}: at least ``slow_request_ms``
- ``http_requests_in_flight`` gauge {route}, computed when collected: the route template,
  or ``<pending>`` while it is not known (never the path)
- ``process_resident_memory_bytes``, ``process_start_time_seconds``,
  ``process_uptime_seconds`` gauges
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from perfkit._errors import MetricsError
from perfkit.http.routes import PENDING, route_label, route_template
from perfkit.metrics.registry import (
    DEFAULT_BUCKETS,
    CounterChild,
    HistogramChild,
    MetricsRegistry,
)
from perfkit.metrics.snapshot import MetricSnapshot, Sample
from perfkit.metrics.system import process_start_time, resident_memory
from perfkit.metrics.trends import Trends, estimate_quantile

__all__ = ["RequestMetrics", "RequestSummary", "SlowRequest", "summarize"]

_METHODS = frozenset(
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]
)
_STATUS_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")
_Children = tuple[HistogramChild, CounterChild, CounterChild | None, CounterChild]


class SlowRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A request that took at least ``slow_request_ms`` (path without query string)."""

    at: float
    method: str
    route: str
    path: str
    status: int
    duration_ms: float


class RequestSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Totals over every route since start (or since the metrics were cleared)."""

    requests: int
    errors: int
    slow: int
    in_flight: int
    avg_ms: float | None
    p95_ms: float | None
    error_rate: float | None
    slow_pct: float | None


class RequestMetrics:
    """Records finished requests into a registry, the slow-request log and the trends.

    ``keep_slow`` bounds how many recent slow requests are kept for :meth:`slowest`.
    """

    def __init__(
        self,
        registry: MetricsRegistry,
        *,
        slow_request_ms: float = 1000.0,
        trends: Trends | None = None,
        keep_slow: int = 100,
        buckets: tuple[float, ...] = DEFAULT_BUCKETS,
    ) -> None:
        for collector in registry.collectors():
            if isinstance(getattr(collector, "__self__", None), RequestMetrics):
                raise MetricsError("this registry already has a RequestMetrics; share that one")
        self.registry = registry
        self.slow_request_s = slow_request_ms / 1000.0
        self.trends = trends
        self.duration = registry.histogram(
            "http_request_duration_seconds",
            "Time from the request to the last byte of the response.",
            ("method", "route"),
            buckets=buckets,
        )
        self.requests = registry.counter(
            "http_requests_total", "Finished requests.", ("method", "route", "status_class")
        )
        self.errors = registry.counter(
            "http_request_errors_total",
            "Requests answered 5xx or ended by an exception.",
            ("method", "route"),
        )
        self.slow = registry.counter(
            "http_slow_requests_total",
            "Requests at least SLOW_REQUEST_MS long.",
            ("method", "route"),
        )
        # id(scope or environ) -> (scope or environ, root path before the app ran): routes
        # are resolved when collected, by which time the host's router has usually run.
        self._in_flight: dict[int, tuple[Mapping[str, Any], str]] = {}
        self._slow_log: deque[SlowRequest] = deque(maxlen=keep_slow)
        self._children: dict[tuple[str, str, int], _Children] = {}
        self._children_cap = registry.max_label_sets * 8
        self._lock = threading.Lock()
        # Called with (method, route, status, seconds) for each finished request: how
        # perfkit.otel records durations into an OpenTelemetry histogram.
        self.observers: list[Callable[[str, str, int, float], None]] = []
        registry.register_collector(self.collect)

    def begin(self, scope: Mapping[str, Any], *, root_path: str = "") -> float:
        """Note a request as in flight; returns its start time (``perf_counter``).

        ``root_path``: the ASGI scope's root path before the app ran (for the templates
        of mounted routes, see :func:`route_template`)."""
        self._in_flight[id(scope)] = (scope, root_path)
        return time.perf_counter()

    def end(
        self,
        scope: Mapping[str, Any],
        method: str,
        path: str,
        status: int,
        seconds: float,
        *,
        failed: bool = False,
        route: str | None = None,
    ) -> None:
        """Record a finished request (``failed``: it raised instead of answering).

        ``route`` is the label when the caller resolved it (see :func:`route_label`);
        by default it is resolved from ``scope`` now.
        """
        self._in_flight.pop(id(scope), None)
        if method not in _METHODS:
            method = "other"
        if route is None:
            route = route_label(scope, path, status)
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._resolve(key)
        duration, count, error, slow = children
        duration.observe(seconds)
        count.inc()
        is_error = failed or error is not None
        if is_error:
            (error or self.errors.labels(method, route)).inc()
        is_slow = seconds >= self.slow_request_s
        if is_slow:
            slow.inc()
            self._slow_log.append(
                SlowRequest(
                    at=time.time(),
                    method=method,
                    route=route,
                    path=path,
                    status=status,
                    duration_ms=seconds * 1000,
                )
            )
        if self.trends is not None:
            self.trends.record(seconds, error=is_error, slow=is_slow)
        for observer in self.observers:
            observer(method, route, status, seconds)

    def _resolve(self, key: tuple[str, str, int]) -> _Children:
        method, route, status = key
        status_class = _STATUS_CLASSES[min(max(status // 100, 0), 5)]
        children = (
            self.duration.labels(method, route),
            self.requests.labels(method, route, status_class),
            self.errors.labels(method, route) if status >= 500 else None,
            self.slow.labels(method, route),
        )
        with self._lock:
            # Raw routes beyond the registry's cap all map to overflow children; keep
            # this memo bounded too.
            if len(self._children) >= self._children_cap:
                self._children.clear()
            self._children[key] = children
        return children

    def slowest(self, limit: int = 10) -> list[SlowRequest]:
        """The slowest of the recent slow requests, slowest first."""
        recent = list(self._slow_log)
        return sorted(recent, key=lambda r: r.duration_ms, reverse=True)[:limit]

    def in_flight(self) -> dict[str, int]:
        """Requests being served now, per route template (:data:`PENDING` while the host
        has not routed the request, or has no template for it)."""
        counts: dict[str, int] = {}
        for scope, root_path in list(self._in_flight.values()):
            route = route_template(scope, root_path) or PENDING
            counts[route] = counts.get(route, 0) + 1
        return counts

    def summary(self) -> RequestSummary:
        """Totals over every route."""
        return summarize(
            [self.duration.snapshot(), self.errors.snapshot(), self.slow.snapshot()],
            in_flight=len(self._in_flight),
        )

    def collect(self) -> list[MetricSnapshot]:
        """In-flight requests per route, and this process's memory and uptime."""
        started = process_start_time()
        in_flight = [Sample((route,), float(n)) for route, n in self.in_flight().items()]
        return [
            MetricSnapshot("http_requests_in_flight", "gauge", "Requests being served now.",
                           ("route",), in_flight),
            MetricSnapshot("process_resident_memory_bytes", "gauge", "Resident memory (RSS).",
                           (), [Sample((), float(resident_memory()))], mode="all"),
            MetricSnapshot("process_start_time_seconds", "gauge", "Process start (unix time).",
                           (), [Sample((), started)], mode="min"),
            MetricSnapshot("process_uptime_seconds", "gauge", "Seconds since the process started.",
                           (), [Sample((), time.time() - started)], mode="max"),
        ]  # fmt: skip


def summarize(metrics: list[MetricSnapshot], *, in_flight: int) -> RequestSummary:
    """The request totals of these metrics (one process's, or several merged): the
    duration histogram summed over its routes gives the count, the mean and the p95."""
    by_name = {metric.name: metric for metric in metrics}
    duration = by_name.get("http_request_duration_seconds")
    bounds = duration.bounds if duration is not None else DEFAULT_BUCKETS
    counts = [0] * (len(bounds) + 1)
    total = 0.0
    for sample in duration.samples if duration is not None else ():
        total += sample.value
        for i, count in enumerate(sample.counts):
            counts[i] += count

    def added(name: str) -> int:
        metric = by_name.get(name)
        return int(sum(s.value for s in metric.samples)) if metric is not None else 0

    requests = sum(counts)
    errors = added("http_request_errors_total")
    slow = added("http_slow_requests_total")
    p95 = estimate_quantile(bounds, counts, 0.95)
    return RequestSummary(
        requests=requests,
        errors=errors,
        slow=slow,
        in_flight=in_flight,
        avg_ms=total / requests * 1000 if requests else None,
        p95_ms=p95 * 1000 if p95 is not None else None,
        error_rate=errors / requests if requests else None,
        slow_pct=slow / requests * 100 if requests else None,
    )
