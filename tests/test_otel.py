"""perfkit.otel with the OpenTelemetry SDK's in-memory exporters: cache, statement and job
spans (trace context from enqueue to the worker), and the metrics bridge."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from psycopg_pool import PoolTimeout

import perfkit.otel
from perfkit import _telemetry
from perfkit.cache import AsyncRedisService, RedisService, cached_query
from perfkit.jobs import JobService, make_worker
from perfkit.jobs.worker import ForkingJobWorker, JobWorker
from perfkit.metrics import PerformanceMonitor
from perfkit.queries import QueryStats, TimedPool
from perfkit.settings import Settings
from perfkit.types import Receive, Scope, Send
from tests._servers import PrivateRedis
from tests.jobs._processors import Mark


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """perfkit.otel on, exporting to memory; off again afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    perfkit.otel.instrument(tracer_provider=provider)
    yield exporter
    perfkit.otel.uninstrument()
    provider.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def all_attribute_values(exporter: InMemorySpanExporter) -> str:
    return repr([dict(span.attributes or {}) for span in exporter.get_finished_spans()])


def test_cache_operations_become_spans_with_hit_and_tags_never_keys_or_values(
    spans: InMemorySpanExporter, redis_url: str, namespace: str
) -> None:
    with RedisService(redis_url, namespace=namespace,
                      settings=Settings(redis_url=redis_url)) as cache:  # fmt: skip
        cache.set("user-ann@example.com", {"secret": "s3cr3t-value"}, tags=["users", "ann"])
        assert cache.get("user-ann@example.com") == {"secret": "s3cr3t-value"}
        assert cache.get("nobody", "fallback") == "fallback"
        assert cache.get_or_set("computed", lambda: 41, tags=["t"]) == 41
        assert cache.get_or_set("computed", lambda: 42) == 41
        cache.invalidate_tags(["users"])
    gets = named(spans, "cache get")
    assert [span.attributes["perfkit.cache.hit"] for span in gets] == [True, False]  # type: ignore[index]
    assert gets[0].kind == SpanKind.CLIENT
    assert gets[0].attributes["db.system.name"] == "redis"  # type: ignore[index]
    (written,) = named(spans, "cache set")
    assert written.attributes["perfkit.cache.tags"] == 2  # type: ignore[index]
    loads = named(spans, "cache get_or_set")
    assert [span.attributes["perfkit.cache.hit"] for span in loads] == [False, True]  # type: ignore[index]
    (invalidated,) = named(spans, "cache invalidate_tags")
    assert invalidated.attributes["perfkit.cache.tags"] == 1  # type: ignore[index]
    recorded = all_attribute_values(spans)
    assert "ann@example.com" not in recorded and "s3cr3t" not in recorded


async def test_async_cache_spans(spans: InMemorySpanExporter, redis_url: str,
                                 namespace: str) -> None:  # fmt: skip
    cache = AsyncRedisService(redis_url, namespace=namespace,
                              settings=Settings(redis_url=redis_url))  # fmt: skip
    try:
        await cache.set("k", 1)
        assert await cache.get("k") == 1
        assert await cache.get("absent") is None

        async def load() -> int:
            return 7

        assert await cache.get_or_set("loaded", load) == 7  # an async loader, then a hit
        assert await cache.get_or_set("loaded", load) == 7
    finally:
        await cache.close()
    gets = named(spans, "cache get")
    assert [span.attributes["perfkit.cache.hit"] for span in gets] == [True, False]  # type: ignore[index]
    loads = named(spans, "cache get_or_set")
    assert [span.attributes["perfkit.cache.hit"] for span in loads] == [False, True]  # type: ignore[index]


def test_statements_become_child_spans_with_the_fingerprint_never_parameters(
    spans: InMemorySpanExporter, database_url: str
) -> None:
    with TimedPool(database_url, query_stats=QueryStats(), min_size=1, max_size=1) as pool:
        pool.wait(10)
        tracer = perfkit.otel._get_tracer()
        with pool.connection() as conn, tracer.start_as_current_span("request") as parent:
            conn.execute("SELECT %s::text AS secret, 42", ["p4ssw0rd-123"]).fetchall()
    (statement,) = [s for s in spans.get_finished_spans() if s.name.startswith("SELECT")]
    (request,) = named(spans, "request")
    assert statement.kind == SpanKind.CLIENT
    assert statement.parent is not None
    assert statement.parent.span_id == parent.get_span_context().span_id
    assert statement.attributes["db.system.name"] == "postgresql"  # type: ignore[index]
    assert statement.attributes["db.operation.name"] == "SELECT"  # type: ignore[index]
    summary = statement.attributes["db.query.summary"]  # type: ignore[index]
    assert "secret" in str(summary)  # the statement's shape ...
    assert "p4ssw0rd" not in all_attribute_values(spans) + statement.name  # ... no parameter
    assert statement.end_time is not None and statement.start_time is not None
    assert statement.end_time > statement.start_time
    assert request.context.trace_id == statement.context.trace_id


def test_a_failed_statement_span_is_an_error(spans: InMemorySpanExporter,
                                             database_url: str) -> None:  # fmt: skip
    with TimedPool(database_url, query_stats=QueryStats(), min_size=1, max_size=1) as pool:
        pool.wait(10)
        with pool.connection() as conn, pytest.raises(Exception, match="division by zero"):
            conn.execute("SELECT 1 / 0").fetchall()
    (failed,) = [s for s in spans.get_finished_spans() if s.name.startswith("SELECT")]
    assert failed.status.status_code == StatusCode.ERROR


def test_job_trace_context_travels_from_enqueue_to_the_worker(
    spans: InMemorySpanExporter, private_redis: PrivateRedis
) -> None:
    conn = redis.Redis.from_url(private_redis.url)
    try:
        job_id = JobService(conn).enqueue("test.record", Mark(key="otel-runs", tag="a"))
        # The worker runs with no span of ours active: only the job's meta links them.
        worker = make_worker(conn, ["testq"], heartbeat_interval=1, maintenance_interval=1)
        worker.work(burst=True, logging_level="WARNING")
        assert conn.lrange("otel-runs", 0, -1) == [b"a"]
    finally:
        conn.close()
    (sent,) = named(spans, "send testq")
    (processed,) = [s for s in spans.get_finished_spans() if s.name.startswith("process testq")]
    assert sent.kind == SpanKind.PRODUCER and processed.kind == SpanKind.CONSUMER
    assert sent.attributes["messaging.message.id"] == job_id  # type: ignore[index]
    assert processed.attributes["messaging.message.id"] == job_id  # type: ignore[index]
    assert processed.parent is not None
    assert processed.parent.span_id == sent.context.span_id
    assert processed.context.trace_id == sent.context.trace_id
    assert processed.status.status_code != StatusCode.ERROR


def test_instrument_patches_nothing_and_uninstrument_empties_the_hooks() -> None:
    classes = (RedisService, AsyncRedisService, QueryStats, JobService, JobWorker,
               ForkingJobWorker)  # fmt: skip
    before = [dict(vars(cls)) for cls in classes]

    def hooks() -> tuple[object, ...]:
        return (_telemetry.cache_operation, _telemetry.statement, _telemetry.job_send,
                _telemetry.job_meta, _telemetry.job_process)  # fmt: skip

    perfkit.otel.instrument()
    try:
        assert perfkit.otel.instrumented()
        assert None not in hooks()
        assert [dict(vars(cls)) for cls in classes] == before
    finally:
        perfkit.otel.uninstrument()
    assert not perfkit.otel.instrumented()
    assert hooks() == (None,) * 5


def by_name(data: MetricsData | None) -> dict[str, Metric]:
    """The metrics an in-memory reader collected, by name."""
    assert data is not None
    return {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


async def test_metrics_bridge_reports_the_registry_with_the_same_names_and_units(
    redis_url: str, namespace: str
) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    cache = RedisService(redis_url, namespace=namespace, settings=Settings(redis_url=redis_url))
    try:
        cache.get("a")
        cache.get("b")
        monitor = PerformanceMonitor(cache=cache)
        bridge = perfkit.otel.bridge_metrics(monitor, meter_provider=provider)
        app = monitor.asgi(hello, compress=False)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for _ in range(3):
                await client.get("/hello")
        data = reader.get_metrics_data()
        bridge.close()
    finally:
        cache.close()
        provider.shutdown()
    found = by_name(data)
    duration = found["http_request_duration_seconds"]
    assert duration.unit == "s"
    (point,) = duration.data.data_points
    assert point.count == 3  # type: ignore[union-attr]
    assert dict(point.attributes or {}) == {"method": "GET", "route": "/hello"}
    misses = found["perfkit_cache_misses"]
    assert misses.data.is_monotonic  # type: ignore[union-attr]
    assert [p.value for p in misses.data.data_points] == [2]  # type: ignore[union-attr]
    assert found["perfkit_cache_lookup_duration_mean_seconds"].unit == "s"
    assert found["perfkit_cache_hit_ratio"].unit == "1"


def test_perfkit_runs_without_opentelemetry_installed(redis_url: str, namespace: str) -> None:
    # A fresh interpreter where importing opentelemetry fails, as without the extra.
    code = f"""
import sys
sys.modules["opentelemetry"] = None
import perfkit, perfkit.jobs, perfkit.cache, perfkit.queries, perfkit.metrics
from perfkit.cache import RedisService
from perfkit.settings import Settings
with RedisService({redis_url!r}, namespace={namespace!r},
                  settings=Settings(redis_url={redis_url!r})) as cache:
    cache.set("k", 1)
    assert cache.get("k") == 1
try:
    import perfkit.otel
except ImportError as exc:
    print("otel:", exc)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "pip install 'perfkit[otel]'" in result.stdout


def test_without_a_tracer_provider_the_methods_answer_as_perfkit_s_own(
    redis_url: str, namespace: str
) -> None:
    # No provider given and none configured globally: calls go straight to perfkit's code.
    perfkit.otel.instrument()
    try:
        assert perfkit.otel._off()
        with RedisService(redis_url, namespace=namespace,
                          settings=Settings(redis_url=redis_url)) as cache:  # fmt: skip
            cache.set("k", None)
            assert cache.get("k", "default") is None  # a cached None is a hit
            assert cache.get("absent", "default") == "default"
            assert cache.get_or_set("x", lambda: 5) == 5
    finally:
        perfkit.otel.uninstrument()


# Starlette 1.x asks for httpx2 under its TestClient; the httpx it warns about is fine here.
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_a_fastapi_app_with_cached_routes_answers_with_tracing_on(
    spans: InMemorySpanExporter, redis_url: str, namespace: str
) -> None:
    # Issue 25: instrument() made every @cached_query call raise (a 500 on every cached route).
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    settings = Settings(redis_url=redis_url)
    cache = RedisService(redis_url, namespace=namespace, settings=settings)
    acache = AsyncRedisService(redis_url, namespace=namespace, settings=settings)
    loads: list[str] = []

    @cached_query(ttl=60, tags=["item:{item_id}"], cache=cache)
    def item(item_id: int) -> dict[str, int]:
        loads.append("sync")
        return {"id": item_id, "double": item_id * 2}

    @cached_query(ttl=60, cache=acache)
    async def aitem(item_id: int) -> dict[str, int]:
        loads.append("async")
        return {"id": item_id, "triple": item_id * 3}

    app = FastAPI()

    @app.get("/items/{item_id}")
    def read_item(item_id: int) -> dict[str, int]:
        return item(item_id)

    @app.get("/aitems/{item_id}")
    async def read_aitem(item_id: int) -> dict[str, int]:
        return await aitem(item_id)

    try:
        with TestClient(app) as client:
            for _ in range(2):  # a miss, then a hit
                answer = client.get("/items/4")
                assert answer.status_code == 200, answer.text
                assert answer.json() == {"id": 4, "double": 8}
                answer = client.get("/aitems/5")
                assert answer.status_code == 200, answer.text
                assert answer.json() == {"id": 5, "triple": 15}
            cache.invalidate_pattern("cq:*")
            cache.clear()
            client.portal.call(acache.close)  # type: ignore[union-attr]  # on the app's loop
    finally:
        cache.close()
    assert loads == ["sync", "async"]
    loaded = named(spans, "cache get_or_set")
    assert [span.attributes["perfkit.cache.hit"] for span in loaded] == [False, False, True, True]  # type: ignore[index]
    (pattern,) = named(spans, "cache invalidate_pattern")
    assert pattern.attributes["perfkit.cache.removed"] == 2  # type: ignore[index]
    assert len(named(spans, "cache clear")) == 1


def test_the_pool_s_numbers_under_the_semantic_conventions_names(database_url: str) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    pool = TimedPool(database_url, query_stats=QueryStats(), min_size=1, max_size=2,
                     timeout=10, name="orders-db")  # fmt: skip
    bridge = perfkit.otel.bridge_metrics(PerformanceMonitor(pool=pool), meter_provider=provider)
    try:
        pool.open(wait=True, timeout=10)  # one connection created, with the bridge on
        for _ in range(3):
            with pool.connection() as conn:
                conn.execute("SELECT %s::text AS v", ["p4ssw0rd-123"]).fetchall()
        first, second = pool.getconn(), pool.getconn()  # both lent: a second one is created
        with pytest.raises(PoolTimeout):
            pool.getconn(timeout=0.2)
        waiter = threading.Thread(target=lambda: pool.putconn(pool.getconn(timeout=30)))
        waiter.start()
        # psycopg_pool keeps the timed-out request in its queue until a connection comes
        # back: the waiter makes it two.
        deadline = time.monotonic() + 30
        while (waiting := pool.stats().pool.waiting) < 2:
            assert time.monotonic() < deadline, "the waiter never queued"
            time.sleep(0.01)
        bridge.sync()  # the sources are read at most once a second: now, for this test
        data = reader.get_metrics_data()
        pool.putconn(first)
        pool.putconn(second)
        waiter.join()
        # Tracing comes and goes on its own: the bridge's hooks stay.
        perfkit.otel.instrument()
        perfkit.otel.uninstrument()
        assert _telemetry.db_connection is not None and _telemetry.db_operation is not None
    finally:
        bridge.close()
        pool.close()
        provider.shutdown()
    assert _telemetry.db_connection is None and _telemetry.db_operation is None
    found = by_name(data)
    named = {"db.client.connection.pool.name": "orders-db"}

    def points(name: str, unit: str) -> dict[tuple[tuple[str, Any], ...], Any]:
        metric = found[name]
        assert metric.unit == unit, name
        return {tuple(sorted((p.attributes or {}).items())): p for p in metric.data.data_points}

    def key(**attributes: str) -> tuple[tuple[str, Any], ...]:
        return tuple(sorted((named | attributes).items()))

    count = points("db.client.connection.count", "{connection}")
    assert not found["db.client.connection.count"].data.is_monotonic  # type: ignore[union-attr]
    assert count[key(**{"db.client.connection.state": "used"})].value == 2
    assert count[key(**{"db.client.connection.state": "idle"})].value == 0
    assert points("db.client.connection.max", "{connection}")[key()].value == 2
    assert points("db.client.connection.pending_requests", "{request}")[key()].value == waiting
    timeouts = found["db.client.connection.timeouts"]
    assert timeouts.data.is_monotonic  # type: ignore[union-attr]
    assert points("db.client.connection.timeouts", "{timeout}")[key()].value == 1
    # Histograms, recorded as they happened: 2 connections made, 5 checkouts (3 + the two
    # held), 3 returned, 3 statements.
    assert points("db.client.connection.create_time", "s")[key()].count == 2
    wait = points("db.client.connection.wait_time", "s")[key()]
    assert wait.count == 5 and wait.sum > 0
    assert points("db.client.connection.use_time", "s")[key()].count == 3
    operation = points("db.client.operation.duration", "s")
    (statements,) = operation.values()
    assert statements.count == 3
    assert dict(statements.attributes) == named | {
        "db.system.name": "postgresql",
        "db.operation.name": "SELECT",
    }
    assert data is not None and "p4ssw0rd" not in data.to_json()
    # Next to perfkit's own names.
    assert "perfkit_db_pool_connections_in_use" in found
    assert "perfkit_db_pool_timeouts" in found
