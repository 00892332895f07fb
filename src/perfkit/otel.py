"""OpenTelemetry for perfkit: spans for cache operations, statements and jobs, and the
metrics registry bridged to a ``MeterProvider`` (``pip install 'perfkit[otel]'``).

::

    import perfkit.otel
    perfkit.otel.instrument()                      # spans, to the global TracerProvider
    perfkit.otel.bridge_metrics(kit.monitor)       # metrics, to the global MeterProvider

:func:`instrument` subscribes to perfkit's telemetry hooks (``perfkit._telemetry``), which
the parts call at one place each; nothing of perfkit is patched, and :func:`uninstrument`
empties the hooks again.

- cache (``RedisService``/``AsyncRedisService``): a CLIENT span per public operation, named
  and with the attributes its declaration gives (``perfkit/cache/_ops.py``):
  ``perfkit.cache.hit``, ``perfkit.cache.hits``/``keys``/``removed`` and
  ``perfkit.cache.tags`` counts — never a key or a value;
- statements counted by ``QueryStats``: a CLIENT span per statement from the duration
  perfkit measured, with the database conventions (``db.system.name``,
  ``db.operation.name``, ``db.query.summary`` = the fingerprint, which holds no
  literal; never the parameters);
- jobs: a PRODUCER span per enqueue whose context travels in the job's meta, and a
  CONSUMER span per execution in the worker, child of the enqueue span; and, recorded
  where each job ends, the job metrics (``perfkit_jobs_total`` as the counter
  ``perfkit_jobs``, ``perfkit_job_duration_seconds``, ``perfkit_job_queue_wait_seconds``;
  see docs/jobs.md) on the meter of ``meter_provider`` (default: the global one).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, propagate, trace
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
    from opentelemetry.trace import SpanKind, StatusCode, Tracer, TracerProvider
except ImportError as exc:  # pragma: no cover - what a user without the extra sees
    raise ImportError(
        f"perfkit.otel needs OpenTelemetry: pip install 'perfkit[otel]' ({exc})"
    ) from exc

from perfkit import _telemetry
from perfkit._histogram import exposed_indices
from perfkit.jobs import _metrics as job_metrics
from perfkit.metrics import DEFAULT_BUCKETS, PerformanceMonitor
from perfkit.metrics.snapshot import MetricSnapshot

__all__ = [
    "DatabaseMetrics",
    "MetricsBridge",
    "bridge_metrics",
    "instrument",
    "instrumented",
    "uninstrument",
]

SCOPE = "perfkit"
"""The instrumentation scope name of perfkit's tracer and meter."""

# Where the enqueue span's context travels in a job's meta (W3C traceparent/tracestate).
META_KEY = "perfkit.trace"
# Long fingerprints are cut in span names and summaries (the attribute limit is the SDK's).
SUMMARY_LENGTH = 255

_lock = threading.Lock()
_tracer: Tracer | None = None
_explicit_provider: TracerProvider | None = None
_job_meters: _JobMeters | None = None


def instrument(
    *, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
) -> None:
    """Start tracing perfkit's cache, statements and jobs, and recording the job metrics
    where jobs end (idempotent).

    ``tracer_provider`` and ``meter_provider`` default to the global ones; until a tracer
    provider is configured the hooks return at once (no spans are made).
    """
    global _tracer, _explicit_provider, _job_meters
    with _lock:
        _tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        _explicit_provider = tracer_provider
        _job_meters = _JobMeters(metrics.get_meter(SCOPE, meter_provider=meter_provider))
        _telemetry.subscribe(
            cache_operation=_cache_operation,
            statement=_statement,
            job_send=_job_send,
            job_meta=_job_meta,
            job_process=_job_process,
            job_outcome=_job_outcome,
        )


def uninstrument() -> None:
    """Stop tracing: every hook is empty again."""
    global _tracer, _explicit_provider, _job_meters
    with _lock:
        _telemetry.subscribe()  # the tracing slots: a metrics bridge keeps its own
        _tracer = _explicit_provider = _job_meters = None


def instrumented() -> bool:
    """Whether :func:`instrument` is on."""
    return _telemetry.cache_operation is _cache_operation


def _off() -> bool:
    """No provider given to instrument() and none configured globally yet."""
    return _explicit_provider is None and isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider
    )


def _get_tracer() -> Tracer:
    tracer = _tracer
    return tracer if tracer is not None else trace.get_tracer(SCOPE)


class _Span:
    """An OpenTelemetry span, started as the current one on entry, as a perfkit
    :class:`~perfkit._telemetry.Span`."""

    __slots__ = ("_manager", "_span")

    def __init__(self, manager: AbstractContextManager[trace.Span]) -> None:
        self._manager = manager

    def __enter__(self) -> _Span:
        self._span = self._manager.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # The span records an exception and ends; the exception goes on. (Three arguments,
        # not *exc_info: a tuple packed and unpacked on every traced operation.)
        self._manager.__exit__(exc_type, exc, tb)

    def set_attribute(self, key: str, value: bool | int | str, /) -> None:
        self._span.set_attribute(key, value)

    def set_error(self, description: str, /) -> None:
        self._span.set_status(StatusCode.ERROR, description)


def _start(
    name: str,
    kind: SpanKind,
    attributes: Mapping[str, Any],
    context: otel_context.Context | None = None,
) -> _telemetry.Around:
    # Until a TracerProvider is configured, spans would go nowhere: make none.
    if _off():
        return _telemetry.NOTHING
    return _Span(
        _get_tracer().start_as_current_span(name, context=context, kind=kind, attributes=attributes)
    )


# -- the hooks -------------------------------------------------------------------------------


def _cache_operation(name: str, attributes: Mapping[str, bool | int | str]) -> _telemetry.Around:
    return _start(name, SpanKind.CLIENT, attributes)


def _statement(
    summary: Callable[[], str], seconds: float, rows: int, failed: bool, pool: str
) -> None:
    # The statement has run: its span is made from the duration perfkit measured, in the
    # caller's context (the statement's parent).
    if _off():
        return
    end = time.time_ns()
    span = _get_tracer().start_span("db", kind=SpanKind.CLIENT, start_time=end - int(seconds * 1e9))
    if not span.is_recording():  # sampled out: skip the fingerprint
        span.end(end_time=end)
        return
    text = summary()[:SUMMARY_LENGTH]
    span.update_name(text)
    span.set_attributes({
        "db.system.name": "postgresql",
        "db.operation.name": text.split(" ", 1)[0].upper(),
        "db.query.summary": text,
        "db.client.connection.pool.name": pool,
        "db.response.returned_rows": rows,
    })  # fmt: skip
    if failed:
        span.set_status(StatusCode.ERROR)
    span.end(end_time=end)


def _job_send(queue: str) -> _telemetry.Around:
    attributes = {
        "messaging.system": "rq",
        "messaging.operation.type": "send",
        "messaging.destination.name": queue,
    }
    return _start(f"send {queue}", SpanKind.PRODUCER, attributes)


def _job_meta() -> dict[str, Any] | None:
    # Called inside the send span: its context is the one injected.
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {META_KEY: carrier} if carrier else None


def _job_process(queue: str, job_id: str, meta: Mapping[str, Any]) -> _telemetry.Around:
    # The worker runs with no span of the app's: the parent is the enqueue span, from meta.
    parent = propagate.extract(meta.get(META_KEY) or {}, context=otel_context.Context())
    attributes = {
        "messaging.system": "rq",
        "messaging.operation.type": "process",
        "messaging.destination.name": queue,
        "messaging.message.id": job_id,
    }
    return _start(f"process {queue}", SpanKind.CONSUMER, attributes, parent)


class _JobMeters:
    """The job metrics' instruments (names and buckets of perfkit.jobs._metrics)."""

    def __init__(self, meter: Meter) -> None:
        self.total = meter.create_counter(
            job_metrics.TOTAL.removesuffix("_total"), "", job_metrics.HELP[job_metrics.TOTAL]
        )
        self.duration, self.wait = (
            meter.create_histogram(
                name,
                unit="s",
                description=job_metrics.HELP[name],
                explicit_bucket_boundaries_advisory=_advised(job_metrics.BOUNDS),
            )
            for name in (job_metrics.DURATION, job_metrics.WAIT)
        )


def _job_outcome(
    function: str, queue: str, outcome: str, duration: float | None, wait: float | None
) -> None:
    meters = _job_meters
    if meters is None:
        return
    attributes = {"function": function, "queue": queue, "outcome": outcome}
    meters.total.add(1, attributes)
    if duration is not None:
        meters.duration.record(duration, attributes)
    if wait is not None:
        meters.wait.record(wait, {"function": function, "queue": queue})


# -- metrics ---------------------------------------------------------------------------------


class MetricsBridge:
    """The registry's metrics as OpenTelemetry instruments of the same names and units,
    and a database pool's under the semantic conventions' names (:class:`DatabaseMetrics`).

    Counters and gauges are observable instruments read at each collection (the sources
    are refreshed first, at most once a second); the request duration histogram is
    recorded as requests end. A counter's OTel name drops ``_total`` (an OTel Prometheus
    exporter adds it back); units follow the name (``_seconds`` -> ``s``, ``_bytes`` ->
    ``By``, ``_ratio`` -> ``1``). Metrics a source starts to report after the bridge
    was made are added by :meth:`sync` (called at every collection).
    """

    def __init__(self, monitor: PerformanceMonitor, meter: Meter) -> None:
        self.monitor = monitor
        self.meter = meter
        self._lock = threading.Lock()
        self._names: set[str] = set()
        self._latest: dict[str, MetricSnapshot] = {}
        self._taken = 0.0
        duration = monitor.requests.duration
        self._duration = meter.create_histogram(
            duration.name,
            unit="s",
            description=duration.help,
            explicit_bucket_boundaries_advisory=_advised(duration.bounds),
        )
        self._names.add(duration.name)
        monitor.requests.observers.append(self._observe_request)
        self.database = (
            DatabaseMetrics(meter, self._pool_stats) if monitor.pool_collector is not None else None
        )
        self.sync()

    def _pool_stats(self) -> Any:
        """The monitor's pool's latest :class:`~perfkit.queries.PoolStats` (``None``: none)."""
        self._take()
        collector = self.monitor.pool_collector
        latest = collector.latest if collector is not None else None
        return getattr(latest, "pool", None)

    def _observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._duration.record(seconds, {"method": method, "route": route})

    def sync(self) -> None:
        """Create instruments for metrics that appeared since the last call."""
        for metric in self._take(force=True).values():
            if metric.name in self._names or metric.kind == "histogram":
                continue
            self._names.add(metric.name)
            callback = functools.partial(self._observe, metric.name)
            unit = _unit(metric.name)
            if metric.kind == "counter":
                self.meter.create_observable_counter(metric.name.removesuffix("_total"),
                                                     [callback], unit, metric.help)  # fmt: skip
            else:
                self.meter.create_observable_gauge(metric.name, [callback], unit, metric.help)

    def _take(self, *, force: bool = False) -> dict[str, MetricSnapshot]:
        with self._lock:
            now = time.monotonic()
            if force or now - self._taken > 1.0:
                self.monitor.refresh()
                self._latest = {m.name: m for m in self.monitor.registry.snapshot()}
                self._taken = now
            return self._latest

    def _observe(self, name: str, options: CallbackOptions) -> Iterable[Observation]:
        metric = self._take().get(name)
        if metric is None:
            return []
        return [
            Observation(sample.value, dict(zip(metric.labelnames, sample.labels, strict=True)))
            for sample in metric.samples
        ]

    def close(self) -> None:
        """Stop recording request durations and the database's times (observable
        instruments stay with the meter)."""
        observers = self.monitor.requests.observers
        if self._observe_request in observers:
            observers.remove(self._observe_request)
        if self.database is not None:
            self.database.close()


# The semantic conventions' database client metrics (opentelemetry-semantic-conventions'
# ``db_metrics``: instrument kinds and units), with perfkit's pool name as the pool's.
POOL_NAME = "db.client.connection.pool.name"
CONNECTION_STATE = "db.client.connection.state"
# A connection event of the hook db_connection -> its histogram's name.
_CONNECTION_TIMES = {
    "create": ("db.client.connection.create_time", "The time it took to create a new connection."),
    "wait": ("db.client.connection.wait_time",
             "The time it took to obtain an open connection from the pool."),
    "use": ("db.client.connection.use_time",
            "The time between borrowing a connection and returning it to the pool."),
}  # fmt: skip


class DatabaseMetrics:
    """A database pool's numbers under the OpenTelemetry semantic conventions' names, next
    to perfkit's own (``perfkit_db_pool_*``): what :class:`MetricsBridge` adds when its
    monitor has a pool.

    ``pool_stats`` returns the pool's latest :class:`~perfkit.queries.PoolStats` (or
    ``None``), read at each collection for the observable instruments; the three
    connection times and ``db.client.operation.duration`` are recorded as they happen,
    through the telemetry hooks ``db_connection`` and ``db_operation`` (every pool and
    statement recorder of the process).
    """

    def __init__(self, meter: Meter, pool_stats: Callable[[], Any]) -> None:
        self._pool_stats = pool_stats
        self.meter = meter
        meter.create_observable_up_down_counter(
            "db.client.connection.count", [self._count], "{connection}",
            "The number of connections that are currently in state described by the state "
            "attribute.",
        )  # fmt: skip
        meter.create_observable_up_down_counter(
            "db.client.connection.max", [self._field("max_size")], "{connection}",
            "The maximum number of open connections allowed.",
        )  # fmt: skip
        meter.create_observable_up_down_counter(
            "db.client.connection.pending_requests", [self._field("waiting")], "{request}",
            "The number of current pending requests for an open connection.",
        )  # fmt: skip
        meter.create_observable_counter(
            "db.client.connection.timeouts", [self._field("timeouts")], "{timeout}",
            "The number of connection timeouts that have occurred trying to obtain a "
            "connection from the pool.",
        )  # fmt: skip
        advised = _advised(DEFAULT_BUCKETS)
        self._times = {
            event: meter.create_histogram(name, unit="s", description=description,
                                          explicit_bucket_boundaries_advisory=advised)
            for event, (name, description) in _CONNECTION_TIMES.items()
        }  # fmt: skip
        self._operation = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=advised,
        )
        _telemetry.subscribe_metrics(db_connection=self._connection, db_operation=self._statement)

    def _count(self, options: CallbackOptions) -> Iterable[Observation]:
        pool = self._pool_stats()
        if pool is None:
            return []
        return [
            Observation(pool.idle, {POOL_NAME: pool.name, CONNECTION_STATE: "idle"}),
            Observation(pool.in_use, {POOL_NAME: pool.name, CONNECTION_STATE: "used"}),
        ]

    def _field(self, field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            pool = self._pool_stats()
            if pool is None:
                return []
            return [Observation(getattr(pool, field), {POOL_NAME: pool.name})]

        return observe

    def _connection(self, event: str, pool: str, seconds: float) -> None:
        self._times[event].record(seconds, {POOL_NAME: pool})

    def _statement(
        self, summary: Callable[[], str], seconds: float, failed: bool, pool: str
    ) -> None:
        attributes = {
            "db.system.name": "postgresql",
            # The statement's verb (SELECT, INSERT ...): few values, never a literal.
            "db.operation.name": summary().split(" ", 1)[0].upper(),
        }
        if pool:  # "" where the recorder has no pool of perfkit's
            attributes[POOL_NAME] = pool
        if failed:
            attributes["error.type"] = "_OTHER"  # perfkit keeps no exception class
        self._operation.record(seconds, attributes)

    def close(self) -> None:
        """Stop recording (the hooks are emptied when they are still this bridge's)."""
        if _telemetry.db_connection == self._connection:
            _telemetry.subscribe_metrics()


def bridge_metrics(
    monitor: PerformanceMonitor, *, meter_provider: MeterProvider | None = None
) -> MetricsBridge:
    """Report ``monitor``'s metrics (``kit.monitor``) through OpenTelemetry, to
    ``meter_provider`` or the global one (see :class:`MetricsBridge`)."""
    meter = metrics.get_meter(SCOPE, meter_provider=meter_provider)
    return MetricsBridge(monitor, meter)


def _advised(bounds: tuple[float, ...]) -> list[float]:
    """The bucket boundaries advised to the SDK: the ones Prometheus sees (one per doubling
    of perfkit's layout, not its 209), so that an exported data point stays small."""
    return [bounds[i] for i in exposed_indices(bounds)]


def _unit(name: str) -> str:
    base = name.removesuffix("_total")
    if base.endswith("_seconds"):
        return "s"
    if base.endswith("_bytes"):
        return "By"
    if base.endswith("_ratio"):
        return "1"
    return ""
