"""OpenTelemetry for perfkit: spans for cache operations, statements and jobs, and the
metrics registry bridged to a ``MeterProvider`` (``pip install 'perfkit[otel]'``).

::

    import perfkit.otel
    perfkit.otel.instrument()                      # spans, to the global TracerProvider
    perfkit.otel.bridge_metrics(kit.monitor)       # metrics, to the global MeterProvider

Like OpenTelemetry's own instrumentations, :func:`instrument` wraps perfkit's methods
while it is on and :func:`uninstrument` puts them back, so a process that never calls
it runs perfkit's code unchanged (the one hook left, in job enqueue, returns ``None``).

- cache (``RedisService``/``AsyncRedisService``): a CLIENT span per get, get_many,
  get_or_set / ``@cached_query`` load, set, delete, invalidate_tags, with
  ``perfkit.cache.hit``, ``perfkit.cache.hits``/``keys`` and ``perfkit.cache.tags``
  counts — never a key or a value;
- statements through ``TimedPool``: a CLIENT span per statement from the duration
  perfkit measured, with the database conventions (``db.system.name``,
  ``db.operation.name``, ``db.query.summary`` = the fingerprint, which holds no
  literal; never the parameters);
- jobs: a PRODUCER span per enqueue whose context travels in the job's meta, and a
  CONSUMER span per execution in the worker, child of the enqueue span.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
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
from perfkit._acompat import is_async_callable
from perfkit.cache import AsyncRedisService, RedisService
from perfkit.jobs import JobService
from perfkit.jobs.processor import get_processor
from perfkit.jobs.worker import ForkingJobWorker, JobWorker
from perfkit.metrics import PerformanceMonitor
from perfkit.metrics.snapshot import MetricSnapshot
from perfkit.queries import QueryStats

__all__ = ["MetricsBridge", "bridge_metrics", "instrument", "instrumented", "uninstrument"]

SCOPE = "perfkit"
"""The instrumentation scope name of perfkit's tracer and meter."""

# Where the enqueue span's context travels in a job's meta (W3C traceparent/tracestate).
META_KEY = "perfkit.trace"
# Long fingerprints are cut in span names and summaries (the attribute limit is the SDK's).
SUMMARY_LENGTH = 255

_lock = threading.Lock()
_patched: list[tuple[type, str, Any]] = []  # (class, attribute, what it had before or None)
_tracer: Tracer | None = None
_explicit_provider: TracerProvider | None = None
_MISSING = object()


def instrument(*, tracer_provider: TracerProvider | None = None) -> None:
    """Start tracing perfkit's cache, statements and jobs (idempotent).

    ``tracer_provider`` defaults to the global one; until one is configured the wrapped
    methods call perfkit's own straight away (no spans are made).
    """
    global _tracer, _explicit_provider
    with _lock:
        _tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        _explicit_provider = tracer_provider
        if _patched:
            return
        for cls in (RedisService, AsyncRedisService):
            _patch(cls, "get", _traced_get)
            _patch(cls, "get_many", _traced_get_many)
            _patch(cls, "_load", _traced_load)  # get_or_set and @cached_query
            _patch(cls, "set_many", _traced_set)
            _patch(cls, "delete", _traced_delete)
            _patch(cls, "invalidate_tags", _traced_invalidate)
        _patch(QueryStats, "record", _traced_record)
        _patch(JobService, "enqueue", _traced_enqueue)
        for worker in (JobWorker, ForkingJobWorker):
            _patch(worker, "perform_job", _traced_perform)
        _telemetry.set_enqueue_meta(_trace_meta)


def uninstrument() -> None:
    """Stop tracing: every wrapped method is perfkit's own again."""
    global _tracer, _explicit_provider
    with _lock:
        while _patched:
            cls, name, before = _patched.pop()
            if before is None:
                delattr(cls, name)
            else:
                setattr(cls, name, before)
        _telemetry.reset()
        _tracer = _explicit_provider = None


def instrumented() -> bool:
    """Whether :func:`instrument` is on."""
    return bool(_patched)


def _patch(cls: type, name: str, make: Callable[[Callable[..., Any], bool], Any]) -> None:
    original = getattr(cls, name)
    _patched.append((cls, name, cls.__dict__.get(name)))
    is_async = is_async_callable(original)
    traced = make(original, is_async)
    wrapper: Callable[..., Any]
    # Until a TracerProvider is configured, spans would go nowhere: call perfkit's own
    # method straight away instead of making no-op spans.
    if is_async:

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _off():
                return await original(*args, **kwargs)
            return await traced(*args, **kwargs)

    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _off():
                return original(*args, **kwargs)
            return traced(*args, **kwargs)

    setattr(cls, name, functools.wraps(original)(wrapper))


def _off() -> bool:
    """No provider given to instrument() and none configured globally yet."""
    return _explicit_provider is None and isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider
    )


def _get_tracer() -> Tracer:
    tracer = _tracer
    return tracer if tracer is not None else trace.get_tracer(SCOPE)


# -- cache -----------------------------------------------------------------------------------

_CACHE = {"db.system.name": "redis"}


def _cache_span(operation: str, **attributes: Any) -> Any:
    return _get_tracer().start_as_current_span(
        f"cache {operation}",
        kind=SpanKind.CLIENT,
        attributes={**_CACHE, "db.operation.name": operation, **attributes},
    )


def _traced_get(original: Callable[..., Any], is_async: bool) -> Any:
    def answer(span: Any, value: Any, default: Any) -> Any:
        span.set_attribute("perfkit.cache.hit", value is not _MISSING)
        return default if value is _MISSING else value

    if is_async:

        async def aget(self: Any, key: str, default: Any = None) -> Any:
            with _cache_span("get") as span:
                return answer(span, await original(self, key, _MISSING), default)

        return aget

    def get(self: Any, key: str, default: Any = None) -> Any:
        with _cache_span("get") as span:
            return answer(span, original(self, key, _MISSING), default)

    return get


def _traced_get_many(original: Callable[..., Any], is_async: bool) -> Any:
    def counted(span: Any, keys: Any, found: Mapping[str, Any]) -> Mapping[str, Any]:
        span.set_attribute("perfkit.cache.keys", len(keys) if hasattr(keys, "__len__") else -1)
        span.set_attribute("perfkit.cache.hits", len(found))
        return found

    if is_async:

        async def aget_many(self: Any, keys: Iterable[str]) -> Any:
            keys = keys if isinstance(keys, str) else list(keys)
            with _cache_span("get_many") as span:
                return counted(span, keys, await original(self, keys))

        return aget_many

    def get_many(self: Any, keys: Iterable[str]) -> Any:
        keys = keys if isinstance(keys, str) else list(keys)
        with _cache_span("get_many") as span:
            return counted(span, keys, original(self, keys))

    return get_many


def _traced_load(original: Callable[..., Any], is_async: bool) -> Any:
    # A hit is a load whose loader did not run (in this process).
    def watched(loader: Callable[[], Any], ran: list[bool]) -> Callable[[], Any]:
        def load() -> Any:
            ran.append(True)
            return loader()

        return load

    def tags_of(rest: tuple[Any, ...]) -> int:
        return len(list(rest[1])) if len(rest) > 1 and rest[1] else 0

    if is_async:

        async def aload(self: Any, key: str, loader: Callable[[], Any], *rest: Any) -> Any:
            ran: list[bool] = []
            with _cache_span("get_or_set", **{"perfkit.cache.tags": tags_of(rest)}) as span:
                value = await original(self, key, watched(loader, ran), *rest)
                span.set_attribute("perfkit.cache.hit", not ran)
                return value

        return aload

    def load(self: Any, key: str, loader: Callable[[], Any], *rest: Any) -> Any:
        ran: list[bool] = []
        with _cache_span("get_or_set", **{"perfkit.cache.tags": tags_of(rest)}) as span:
            value = original(self, key, watched(loader, ran), *rest)
            span.set_attribute("perfkit.cache.hit", not ran)
            return value

    return load


def _traced_set(original: Callable[..., Any], is_async: bool) -> Any:
    def attributes(mapping: Mapping[str, Any], tags: Iterable[str]) -> dict[str, Any]:
        tags = () if isinstance(tags, str) else tags  # a lone string is refused inside
        return {"perfkit.cache.keys": len(mapping), "perfkit.cache.tags": len(list(tags))}

    if is_async:

        async def aset_many(
            self: Any, mapping: Mapping[str, Any], ttl: float | None = None,
            tags: Iterable[str] = (),
        ) -> None:  # fmt: skip
            tags = tags if isinstance(tags, str) else list(tags)
            with _cache_span("set", **attributes(mapping, tags)):
                await original(self, mapping, ttl, tags)

        return aset_many

    def set_many(
        self: Any, mapping: Mapping[str, Any], ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        tags = tags if isinstance(tags, str) else list(tags)
        with _cache_span("set", **attributes(mapping, tags)):
            original(self, mapping, ttl, tags)

    return set_many


def _traced_delete(original: Callable[..., Any], is_async: bool) -> Any:
    if is_async:

        async def adelete(self: Any, *keys: str) -> int:
            with _cache_span("delete", **{"perfkit.cache.keys": len(keys)}):
                return int(await original(self, *keys))

        return adelete

    def delete(self: Any, *keys: str) -> int:
        with _cache_span("delete", **{"perfkit.cache.keys": len(keys)}):
            return int(original(self, *keys))

    return delete


def _traced_invalidate(original: Callable[..., Any], is_async: bool) -> Any:
    if is_async:

        async def ainvalidate(self: Any, tags: Iterable[str]) -> None:
            tags = tags if isinstance(tags, str) else list(tags)
            with _cache_span("invalidate_tags", **{"perfkit.cache.tags": len(tags)}):
                await original(self, tags)

        return ainvalidate

    def invalidate(self: Any, tags: Iterable[str]) -> None:
        tags = tags if isinstance(tags, str) else list(tags)
        with _cache_span("invalidate_tags", **{"perfkit.cache.tags": len(tags)}):
            original(self, tags)

    return invalidate


# -- statements ------------------------------------------------------------------------------


def _traced_record(original: Callable[..., Any], is_async: bool) -> Any:
    def record(
        self: QueryStats, query: Any, seconds: float, rows: int = 0, failed: bool = False,
        pool: str = "", context: Any = None, ended: float | None = None,
    ) -> None:  # fmt: skip
        original(self, query, seconds, rows, failed, pool, context, ended)
        # The statement has run: its span is made from the duration perfkit measured, in
        # the caller's context (the statement's parent).
        end = time.time_ns()
        span = _get_tracer().start_span(
            "db", kind=SpanKind.CLIENT, start_time=end - int(seconds * 1e9)
        )
        if not span.is_recording():  # no SDK provider, or sampled out: skip the fingerprint
            span.end(end_time=end)
            return
        summary = self.fingerprint(query, context).text[:SUMMARY_LENGTH]
        span.update_name(summary)
        span.set_attributes({
            "db.system.name": "postgresql",
            "db.operation.name": summary.split(" ", 1)[0].upper(),
            "db.query.summary": summary,
            "db.client.connection.pool.name": pool,
            "db.response.returned_rows": rows,
        })  # fmt: skip
        if failed:
            span.set_status(StatusCode.ERROR)
        span.end(end_time=end)

    return record


# -- jobs ------------------------------------------------------------------------------------


def _trace_meta() -> dict[str, Any] | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {META_KEY: carrier} if carrier else None


def _traced_enqueue(original: Callable[..., Any], is_async: bool) -> Any:
    def enqueue(self: JobService, processor_or_func: Any, *args: Any, **kwargs: Any) -> str:
        queue = kwargs.get("queue")
        if queue is None and (isinstance(processor_or_func, str)
                              or hasattr(processor_or_func, "processor")):  # fmt: skip
            queue = get_processor(processor_or_func).queue
        with _get_tracer().start_as_current_span(
            f"send {queue}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rq",
                "messaging.operation.type": "send",
                "messaging.destination.name": str(queue),
            },
        ) as span:
            job_id: str = original(self, processor_or_func, *args, **kwargs)
            span.set_attribute("messaging.message.id", job_id)
            return job_id

    return enqueue


def _traced_perform(original: Callable[..., Any], is_async: bool) -> Any:
    def perform_job(self: Any, job: Any, queue: Any, *args: Any, **kwargs: Any) -> Any:
        carrier = (job.meta or {}).get(META_KEY) or {}
        parent = propagate.extract(carrier, context=otel_context.Context())
        with _get_tracer().start_as_current_span(
            f"process {queue.name}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rq",
                "messaging.operation.type": "process",
                "messaging.destination.name": queue.name,
                "messaging.message.id": job.id,
            },
        ) as span:
            succeeded = original(self, job, queue, *args, **kwargs)
            if succeeded is False:
                span.set_status(StatusCode.ERROR, "the job failed")
            return succeeded

    return perform_job


# -- metrics ---------------------------------------------------------------------------------


class MetricsBridge:
    """The registry's metrics as OpenTelemetry instruments of the same names and units.

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
            explicit_bucket_boundaries_advisory=list(duration.bounds),
        )
        self._names.add(duration.name)
        monitor.requests.observers.append(self._observe_request)
        self.sync()

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
        """Stop recording request durations (observable instruments stay with the meter)."""
        observers = self.monitor.requests.observers
        if self._observe_request in observers:
            observers.remove(self._observe_request)


def bridge_metrics(
    monitor: PerformanceMonitor, *, meter_provider: MeterProvider | None = None
) -> MetricsBridge:
    """Report ``monitor``'s metrics (``kit.monitor``) through OpenTelemetry, to
    ``meter_provider`` or the global one (see :class:`MetricsBridge`)."""
    meter = metrics.get_meter(SCOPE, meter_provider=meter_provider)
    return MetricsBridge(monitor, meter)


def _unit(name: str) -> str:
    base = name.removesuffix("_total")
    if base.endswith("_seconds"):
        return "s"
    if base.endswith("_bytes"):
        return "By"
    if base.endswith("_ratio"):
        return "1"
    return ""
