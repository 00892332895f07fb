"""When a request ends (issue 25): a WSGI request ends when its body is exhausted or closed,
whichever comes first, exactly once — so test clients that read without closing (Flask's
``test_client()``, werkzeug's ``Client`` around a Django project) are counted — and
requests in flight are labelled by route template or ``<pending>``, never by path."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from perfkit.http import MetricsMiddleware, WSGIMetricsMiddleware
from perfkit.http.routes import PENDING
from perfkit.metrics import MetricsRegistry, PerformanceMonitor, RequestMetrics
from perfkit.types import Environ, Receive, Scope, Send, StartResponse
from tests.metrics.test_request_metrics import value
from tests.metrics.test_wsgi_servers import scrape, serve  # noqa: F401  (the fixture)
from tests.metrics.wsgi_sites import _flask

ROOT = Path(__file__).resolve().parents[2]


def test_flask_test_client_requests_are_finished_without_close() -> None:
    app = _flask()
    monitor = PerformanceMonitor()
    app.wsgi_app = monitor.wsgi(app.wsgi_app)  # type: ignore[method-assign]
    client = app.test_client()
    for name in ("ann", "bob"):
        assert client.get(f"/authors/{name}/books").get_json()["author"] == name
    assert len(client.get("/stream").data) == 20_000
    assert b"Not Found" in client.get("/nothing/here").data
    requests = monitor.requests
    assert requests.in_flight() == {}
    # The status looked at, the body never read: ended once the response is dropped.
    assert client.get("/authors/cy/books").status_code == 200
    gc.collect()
    assert requests.in_flight() == {}
    count = "http_requests_total"
    assert value(requests, count, method="GET", route="/authors/<name>/books",
                 status_class="2xx") == 3  # fmt: skip
    assert value(requests, count, method="GET", route="/stream", status_class="2xx") == 1
    assert value(requests, count, method="GET", route="<unmatched>", status_class="4xx") == 1
    assert requests.summary().requests == 5


def test_django_project_read_without_close_is_counted() -> None:
    # Django's settings are per process: the project runs in a child (client_reads.py).
    done = subprocess.run([sys.executable, "-m", "tests.metrics.client_reads"], cwd=ROOT,
                          capture_output=True, timeout=120, check=True)  # fmt: skip
    report = json.loads(done.stdout)
    assert report["statuses"] == [200, 200, 404]
    assert report["in_flight"] == {}
    assert report["requests"] == {"/authors/<str:name>/books 2xx": 2, "<unmatched> 4xx": 1}


def _held(path: str, metrics: RequestMetrics) -> tuple[Any, list[str]]:
    """A plain WSGI request whose body is not read yet (the app has no route templates)."""

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"one"
        yield b"two"

    statuses: list[str] = []
    environ: Environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
    body = WSGIMetricsMiddleware(app, metrics=metrics)(
        environ, lambda status, headers, exc_info=None: statuses.append(status)
    )
    return body, statuses


def test_wsgi_in_flight_labels_are_never_the_path_and_each_request_ends_once() -> None:
    metrics = RequestMetrics(MetricsRegistry())
    held = [_held(f"/products/shirt-{colour}", metrics) for colour in ("blue", "red", "green")]
    assert metrics.in_flight() == {PENDING: 3}
    first, _ = held[0]
    assert b"".join(first) == b"onetwo"  # exhausted: ended
    assert metrics.in_flight() == {PENDING: 2}
    first.close()  # then closed, as a server does: not counted again
    second, _ = held[1]
    assert next(iter(second)) == b"one"
    second.close()  # closed half-read: ended
    third, _ = held[2]
    third.close()  # closed unread: ended
    assert metrics.in_flight() == {}
    assert metrics.summary().requests == 3


async def test_asgi_in_flight_labels_are_templates_or_pending_never_the_path() -> None:
    release = asyncio.Event()
    all_in = asyncio.Event()
    entered: list[str] = []

    def enter(path: str) -> None:
        entered.append(path)
        if len(entered) == 4:
            all_in.set()

    async def plain(scope: Scope, receive: Receive, send: Send) -> None:
        enter(scope["path"])
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def item(request: StarletteRequest) -> PlainTextResponse:
        enter(request.url.path)
        await release.wait()
        return PlainTextResponse("ok")

    starlette = Starlette(routes=[Route("/items/{slug}", item)])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        inner = starlette if scope["path"].startswith("/items/") else plain
        await inner(scope, receive, send)

    metrics = RequestMetrics(MetricsRegistry())
    transport = httpx.ASGITransport(app=MetricsMiddleware(app, metrics=metrics))
    paths = ["/products/blue-shirt", "/products/red-shirt", "/items/a", "/items/b"]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        pending = [asyncio.ensure_future(client.get(path)) for path in paths]
        await asyncio.wait_for(all_in.wait(), 30)
        assert metrics.in_flight() == {PENDING: 2, "/items/{slug}": 2}
        exposed = metrics.registry.exposition()
        assert f'http_requests_in_flight{{route="{PENDING}"}} 2.0' in exposed
        assert "shirt" not in exposed
        release.set()
        await asyncio.gather(*pending)
    assert metrics.in_flight() == {}


def test_a_real_server_counts_each_request_once(serve: Callable[[str, str], str]) -> None:  # noqa: F811
    for server in ("waitress", "gunicorn"):
        url = serve(server, "flask_site")
        with httpx.Client() as client:
            for name in ("ann", "bob"):
                assert client.get(f"{url}/authors/{name}/books").status_code == 200
            assert len(client.get(f"{url}/stream").content) == 20_000
        counts = scrape(url)
        assert counts == {("/authors/<name>/books", "2xx"): 2, ("/stream", "2xx"): 1}, server
