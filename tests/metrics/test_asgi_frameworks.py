"""Route labels from Starlette, FastAPI and Litestar apps served by uvicorn: route
templates through mounts and sub-apps, one label for unmatched paths, excluded paths."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import APIRouter, FastAPI
from litestar import Litestar, Router, get
from litestar.params import FromPath
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from perfkit.metrics import MetricsRegistry, PerformanceMonitor
from perfkit.types import ASGIApp
from tests.metrics.conftest import UvicornThread


def counts(monitor: PerformanceMonitor) -> dict[tuple[str, str], float]:
    """http_requests_total by (route, status_class)."""
    out: dict[tuple[str, str], float] = {}
    for sample in monitor.requests.requests.snapshot().samples:
        _, route, status_class = sample.labels
        out[(route, status_class)] = out.get((route, status_class), 0) + sample.value
    return out


def get_all(url: str, paths: list[str]) -> None:
    with httpx.Client(base_url=url) as client:
        for path in paths:
            client.get(path)


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


def test_starlette_routes_through_mounts_and_sub_apps(
    serve_asgi: Callable[[ASGIApp], UvicornThread],
) -> None:
    sub_app = Starlette(routes=[Route("/things/{name}", ok)])
    app = Starlette(
        routes=[
            Route("/users/{user_id:int}", ok),
            Mount("/v1", routes=[Route("/items/{item_id}", ok)]),
            Mount("/sub", app=sub_app),
            Mount("/org/{org}", routes=[Route("/repos/{repo}", ok)]),
            Route("/only-post", ok, methods=["POST"]),
        ]
    )
    monitor = PerformanceMonitor()
    server = serve_asgi(monitor.asgi(app))
    get_all(server.url, ["/users/1", "/users/2", "/v1/items/a", "/sub/things/x",
                         "/org/acme/repos/perfkit", "/only-post", "/random-2691",
                         "/metrics", "/api/admin/performance/summary"])  # fmt: skip
    found = counts(monitor)
    assert found[("/users/{user_id}", "2xx")] == 2
    assert found[("/v1/items/{item_id}", "2xx")] == 1
    assert found[("/sub/things/{name}", "2xx")] == 1
    assert found[("/org/{org}/repos/{repo}", "2xx")] == 1
    assert found[("/only-post", "4xx")] == 1  # a 405 on a known route keeps its template
    assert found[("<unmatched>", "4xx")] == 1
    routes = {route for route, _ in found}
    assert not [r for r in routes if r.startswith(("/metrics", "/api/admin"))]


def test_fastapi_routes_through_routers_and_mounted_sub_apps(
    serve_asgi: Callable[[ASGIApp], UvicornThread],
) -> None:
    app = FastAPI()
    sub = FastAPI()
    router = APIRouter(prefix="/shop")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    @router.get("/orders/{order_id}")
    async def order(order_id: str) -> dict[str, str]:
        return {"order": order_id}

    @sub.get("/deep/{x}")
    async def deep(x: str) -> dict[str, str]:
        return {"x": x}

    app.include_router(router)
    app.mount("/sub", sub)
    monitor = PerformanceMonitor()
    server = serve_asgi(monitor.asgi(app))
    get_all(server.url, ["/items/1", "/items/2", "/shop/orders/a7", "/sub/deep/z",
                         "/sub/nowhere", "/wp-login.php"])  # fmt: skip
    found = counts(monitor)
    assert found[("/items/{item_id}", "2xx")] == 2
    assert found[("/shop/orders/{order_id}", "2xx")] == 1
    assert found[("/sub/deep/{x}", "2xx")] == 1
    assert found[("<unmatched>", "4xx")] == 2


def test_litestar_routes_are_its_path_templates(
    serve_asgi: Callable[[ASGIApp], UvicornThread],
) -> None:
    @get("/books/{book_id:int}")
    async def book(book_id: FromPath[int]) -> dict[str, int]:
        return {"book": book_id}

    # logging_config=None: Litestar's default takes over this process's root logger (INFO,
    # through a thread writing to the stderr of the moment: pytest's capture, closed at exit).
    app = Litestar(
        route_handlers=[book, Router(path="/api", route_handlers=[book])], logging_config=None
    )
    monitor = PerformanceMonitor()
    server = serve_asgi(monitor.asgi(app))
    get_all(server.url, ["/books/1", "/books/2", "/api/books/3", "/random-2691"])
    found = counts(monitor)
    assert found[("/books/{book_id}", "2xx")] == 2
    assert found[("/api/books/{book_id}", "2xx")] == 1
    assert found[("<unmatched>", "4xx")] == 1


def test_exclude_takes_prefixes_or_a_predicate(
    serve_asgi: Callable[[ASGIApp], UvicornThread],
) -> None:
    app = Starlette(routes=[Route("/a/{x}", ok), Route("/ab", ok), Route("/ping", ok)])
    by_prefix = PerformanceMonitor()
    server = serve_asgi(by_prefix.asgi(app, exclude=["/a", "/ping/"]))
    get_all(server.url, ["/a/1", "/ab", "/ping"])
    assert set(counts(by_prefix)) == {("/ab", "2xx")}  # /a excludes /a/1, not /ab

    by_predicate = PerformanceMonitor()
    server = serve_asgi(by_predicate.asgi(app, exclude=lambda path: path.endswith("b")))
    get_all(server.url, ["/a/1", "/ab", "/metrics"])
    assert set(counts(by_predicate)) == {("/a/{x}", "2xx"), ("<unmatched>", "4xx")}


def test_probes_do_not_push_real_routes_into_overflow(
    serve_asgi: Callable[[ASGIApp], UvicornThread],
) -> None:
    app = Starlette(routes=[Route("/users/{user_id:int}", ok)])
    monitor = PerformanceMonitor(registry=MetricsRegistry(max_label_sets=5))
    server = serve_asgi(monitor.asgi(app))
    get_all(server.url, [f"/scan-{i}.php" for i in range(50)] + ["/users/1"])
    found = counts(monitor)
    assert found == {("<unmatched>", "4xx"): 50, ("/users/{user_id}", "2xx"): 1}
