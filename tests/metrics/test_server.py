"""Once through real servers: uvicorn for ASGI, wsgiref for WSGI, on free loopback ports."""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx

from perfkit.metrics import CONTENT_TYPE, AsyncPerformanceMonitor, PerformanceMonitor
from perfkit.settings import Settings
from perfkit.types import Environ, Receive, Scope, Send, StartResponse
from tests.metrics.apps import JSON_BODY, SLOW_SECONDS, asgi_app, wsgi_app
from tests.metrics.conftest import UvicornThread, WSGIThread
from tests.metrics.test_registry import families

GATE_FIRST = b"first chunk " * 10
GATE_SECOND = b"second chunk " * 10


def exercise(url: str, gate: threading.Event) -> None:
    """Known traffic, compression, ETag/304 and an unbuffered stream, over real HTTP."""
    with httpx.Client(base_url=url, timeout=10) as client:
        zipped = client.get("/json", headers={"accept-encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == JSON_BODY  # httpx decoded it
        etag = zipped.headers["etag"]
        assert etag.startswith('W/"')
        again = client.get("/json", headers={"accept-encoding": "gzip", "if-none-match": etag})
        assert again.status_code == 304
        assert again.content == b""
        for path in ("/items/1", "/items/2", "/slow", "/error"):
            client.get(path)

        # The second chunk is only made once the client has received the first one.
        with client.stream("GET", "/gate", headers={"accept-encoding": "gzip"}) as response:
            assert response.headers["content-encoding"] == "gzip"
            decompressor = zlib.decompressobj(31)
            received = b""
            for raw in response.iter_raw():
                received += decompressor.decompress(raw)
                if received == GATE_FIRST:
                    gate.set()
            assert received == GATE_FIRST + GATE_SECOND


def check_metrics(exposition: str) -> None:
    parsed = families(exposition)
    requests = parsed["http_requests"]
    json_route = (("method", "GET"), ("route", "/json"))
    assert requests[("http_requests_total", (*json_route, ("status_class", "2xx")))] == 1
    assert requests[("http_requests_total", (*json_route, ("status_class", "3xx")))] == 1  # the 304
    assert (
        requests[
            (
                "http_requests_total",
                (("method", "GET"), ("route", "/items/{id}"), ("status_class", "2xx")),
            )
        ]
        == 2
    )
    assert (
        requests[
            (
                "http_requests_total",
                (("method", "GET"), ("route", "/error"), ("status_class", "5xx")),
            )
        ]
        == 1
    )
    assert (
        parsed["http_slow_requests"][
            ("http_slow_requests_total", (("method", "GET"), ("route", "/slow")))
        ]
        == 1
    )
    assert parsed["process_resident_memory_bytes"][("process_resident_memory_bytes", ())] > 0
    gate = parsed["http_request_duration_seconds"]
    assert (
        gate[("http_request_duration_seconds_count", (("method", "GET"), ("route", "/gate")))] == 1
    )


def monitor() -> PerformanceMonitor:
    return PerformanceMonitor(settings=Settings(slow_request_ms=SLOW_SECONDS * 1000 * 0.8))


def test_asgi_through_uvicorn(serve_asgi: Callable[[Any], UvicornThread]) -> None:
    gate = threading.Event()
    mon = monitor()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics":
            body = (await AsyncPerformanceMonitor.of(mon).exposition()).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", CONTENT_TYPE.encode())]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http" and scope["path"] == "/gate":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
            await send({"type": "http.response.body", "body": GATE_FIRST, "more_body": True})
            assert await asyncio.to_thread(gate.wait, 5), "the first chunk never reached the client"
            await send({"type": "http.response.body", "body": GATE_SECOND})
            return
        await asgi_app(scope, receive, send)

    server = serve_asgi(mon.asgi(app))
    exercise(server.url, gate)
    response = httpx.get(server.url + "/metrics", headers={"accept-encoding": "gzip"})
    assert response.headers["content-type"] == CONTENT_TYPE
    check_metrics(response.text)


def test_wsgi_through_wsgiref(serve_wsgi: Callable[[Any], WSGIThread]) -> None:
    gate = threading.Event()
    mon = monitor()

    def gated(start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield GATE_FIRST
        assert gate.wait(5), "the first chunk never reached the client"
        yield GATE_SECOND

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/metrics":
            start_response("200 OK", [("Content-Type", CONTENT_TYPE)])
            return [mon.exposition().encode()]
        if environ["PATH_INFO"] == "/gate":
            return gated(start_response)
        return wsgi_app(environ, start_response)

    server = serve_wsgi(mon.wsgi(app))
    exercise(server.url, gate)
    response = httpx.get(server.url + "/metrics", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    check_metrics(response.text)
