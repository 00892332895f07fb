"""Request metrics middleware, in-process through httpx's ASGI and WSGI transports."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from perfkit.http import MetricsMiddleware, WSGIMetricsMiddleware
from perfkit.metrics import MetricsRegistry, RequestMetrics
from perfkit.metrics.registry import OVERFLOW
from perfkit.types import Message, Receive, Scope, Send
from tests.metrics.apps import SLOW_SECONDS, asgi_app, wsgi_app

TRAFFIC = [
    ("GET", "/json"),
    ("GET", "/json"),
    ("POST", "/small"),
    ("GET", "/items/12"),
    ("GET", "/items/13"),
    ("GET", "/orders/8c2d4a6e-1b3f-4c5d-9e8f-0a1b2c3d4e5f"),
    ("GET", "/routed/77"),
    ("GET", "/missing"),
    ("GET", "/error"),
    ("GET", "/boom"),
    ("GET", "/slow"),
]


def value(metrics: RequestMetrics, name: str, **labels: str) -> float:
    metric = metrics.registry.get(name)
    assert metric is not None
    key = tuple(labels[n] for n in metric.labelnames)
    for sample in metric.snapshot().samples:
        if sample.labels == key:
            return sum(sample.counts) if sample.counts else sample.value
    return 0.0


def check_known_traffic(metrics: RequestMetrics) -> None:
    assert (
        value(metrics, "http_requests_total", method="GET", route="/json", status_class="2xx") == 2
    )
    assert (
        value(metrics, "http_requests_total", method="POST", route="/small", status_class="2xx")
        == 1
    )
    assert (
        value(metrics, "http_requests_total", method="GET", route="/items/{id}", status_class="2xx")
        == 2
    )
    assert (
        value(
            metrics, "http_requests_total", method="GET", route="/orders/{uuid}", status_class="2xx"
        )
        == 1
    )
    # The host's route template wins over the collapsed path.
    assert (
        value(
            metrics,
            "http_requests_total",
            method="GET",
            route="/routed/{item_id}",
            status_class="2xx",
        )
        == 1
    )
    assert (
        value(metrics, "http_requests_total", method="GET", route="<unmatched>", status_class="4xx")
        == 1
    )
    assert (
        value(metrics, "http_requests_total", method="GET", route="/error", status_class="5xx") == 1
    )
    assert (
        value(metrics, "http_requests_total", method="GET", route="/boom", status_class="5xx") == 1
    )
    assert value(metrics, "http_request_errors_total", method="GET", route="/error") == 1
    assert value(metrics, "http_request_errors_total", method="GET", route="/boom") == 1
    assert value(metrics, "http_request_errors_total", method="GET", route="<unmatched>") == 0
    assert value(metrics, "http_request_duration_seconds", method="GET", route="/json") == 2
    assert value(metrics, "http_slow_requests_total", method="GET", route="/slow") == 1
    assert value(metrics, "http_slow_requests_total", method="GET", route="/json") == 0
    summary = metrics.summary()
    assert summary.requests == len(TRAFFIC)
    assert summary.errors == 2
    assert summary.slow == 1
    assert summary.in_flight == 0
    slowest = metrics.slowest()
    assert [(r.route, r.path, r.status) for r in slowest] == [("/slow", "/slow", 200)]
    assert slowest[0].duration_ms >= SLOW_SECONDS * 1000


async def test_asgi_metrics_after_known_traffic() -> None:
    metrics = RequestMetrics(MetricsRegistry(), slow_request_ms=SLOW_SECONDS * 1000 * 0.8)
    app = MetricsMiddleware(asgi_app, metrics=metrics)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for method, path in TRAFFIC:
            await client.request(method, path)
    check_known_traffic(metrics)


def test_wsgi_metrics_after_known_traffic() -> None:
    metrics = RequestMetrics(MetricsRegistry(), slow_request_ms=SLOW_SECONDS * 1000 * 0.8)
    app = WSGIMetricsMiddleware(wsgi_app, metrics=metrics)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://test") as client:
        for method, path in TRAFFIC:
            if path == "/boom":
                with pytest.raises(RuntimeError):
                    client.request(method, path)
            else:
                client.request(method, path)
    check_known_traffic(metrics)


async def test_asgi_streamed_response_is_timed_to_its_last_byte() -> None:
    metrics = RequestMetrics(MetricsRegistry())
    app = MetricsMiddleware(asgi_app, metrics=metrics)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/stream")
    histogram = metrics.duration.labels("GET", "/stream")
    assert histogram.count == 1
    assert histogram.sum >= 3 * 0.02  # three chunks, 20 ms apart


def test_wsgi_streamed_response_is_timed_to_its_last_byte() -> None:
    metrics = RequestMetrics(MetricsRegistry())
    app = WSGIMetricsMiddleware(wsgi_app, metrics=metrics)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://test") as client:
        client.get("/stream")
    histogram = metrics.duration.labels("GET", "/stream")
    assert histogram.count == 1
    assert histogram.sum >= 3 * 0.02


async def test_work_after_the_last_byte_is_not_counted() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        await asyncio.sleep(0.2)  # a background task after the response

    metrics = RequestMetrics(MetricsRegistry())
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/bg", "headers": []}
    await MetricsMiddleware(app, metrics=metrics)(scope, receive, send)
    assert metrics.duration.labels("GET", "/bg").sum < 0.15


async def test_in_flight_requests_are_counted_per_route() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = "/wait/{n}"
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    metrics = RequestMetrics(MetricsRegistry())
    transport = httpx.ASGITransport(app=MetricsMiddleware(app, metrics=metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        pending = asyncio.ensure_future(client.get("/wait/5"))
        await entered.wait()
        assert metrics.in_flight() == {"/wait/{n}": 1}
        exposed = metrics.registry.exposition()
        assert 'http_requests_in_flight{route="/wait/{n}"} 1.0' in exposed
        release.set()
        await pending
    assert metrics.in_flight() == {}


async def test_route_label_cardinality_is_capped() -> None:
    metrics = RequestMetrics(MetricsRegistry(max_label_sets=5))
    app = MetricsMiddleware(asgi_app, metrics=metrics)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for i in range(30):
            await client.get(f"/products/blue-shirt-{i}")
    samples = metrics.duration.snapshot().samples
    assert len(samples) == 6
    overflow = {s.labels: sum(s.counts) for s in samples}[(OVERFLOW, OVERFLOW)]
    assert overflow == 25


def test_process_memory_and_uptime_are_exposed() -> None:
    metrics = RequestMetrics(MetricsRegistry())
    text = metrics.registry.exposition()
    rss = next(
        line for line in text.splitlines() if line.startswith("process_resident_memory_bytes ")
    )
    uptime = next(line for line in text.splitlines() if line.startswith("process_uptime_seconds "))
    assert float(rss.split()[1]) > 1_000_000
    assert 0 < float(uptime.split()[1]) < time.time()


def test_one_request_metrics_per_registry() -> None:
    from perfkit import MetricsError

    registry = MetricsRegistry()
    RequestMetrics(registry)
    with pytest.raises(MetricsError, match="already has a RequestMetrics"):
        RequestMetrics(registry)


def test_a_bad_exclude_is_refused_naming_it() -> None:
    from perfkit import ConfigError

    metrics = RequestMetrics(MetricsRegistry())
    with pytest.raises(ConfigError, match=r"a predicate, got '/metrics'"):
        MetricsMiddleware(asgi_app, metrics=metrics, exclude="/metrics")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'metrics' is not a path"):
        WSGIMetricsMiddleware(wsgi_app, metrics=metrics, exclude=["metrics"])
