"""Admin API benchmarks, measured side by side in one run (ratios, not absolute targets).

    python benchmarks/bench_admin.py

Everything is driven in-process (no sockets), with a kit without parts so that only the
admin layer is measured:

1. Per-request cost of the admin ASGI app answering ``GET trends`` (auth, routing, JSON)
   against a bare ASGI app sending the same bytes.
2. The same for the WSGI adapter against a bare WSGI app (handlers run inline, no loop).
3. The bearer check: a request with the token against the same route opened without
   credentials (``health`` with ``health_open``).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from typing import Any

from perfkit import Perfkit, Settings

TOKEN = "benchmark-token-0123456789abcdef"
N = 20_000


def asgi_driver(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> Callable[[], None]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    loop = asyncio.new_event_loop()

    async def many(count: int) -> None:
        for _ in range(count):
            await app(scope, receive, send)

    def run() -> None:
        loop.run_until_complete(many(N))

    return run


def wsgi_driver(app: Any, path: str, authorization: str | None) -> Callable[[], None]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "wsgi.input": io.BytesIO(),
        "REMOTE_ADDR": "127.0.0.1",
    }
    if authorization:
        environ["HTTP_AUTHORIZATION"] = authorization

    def start_response(status: str, headers: list[tuple[str, str]]) -> Callable[[bytes], None]:
        return lambda data: None

    def run() -> None:
        for _ in range(N):
            for _chunk in app(dict(environ), start_response):
                pass

    return run


def per_request_us(run: Callable[[], None]) -> float:
    run()  # warm up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / N * 1e6


def main() -> None:
    kit = Perfkit(
        settings=Settings(perfkit_admin_token=TOKEN), health_open=True, performance_log=False
    )
    asgi_admin, wsgi_admin = kit.asgi_admin(), kit.wsgi_admin()
    auth = [(b"authorization", f"Bearer {TOKEN}".encode())]
    body = b'{"points":[]}'

    async def bare_asgi(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def bare_wsgi(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    rows = []
    bare = per_request_us(asgi_driver(bare_asgi, "/trends", auth))
    admin = per_request_us(asgi_driver(asgi_admin, "/trends", auth))
    rows.append(("ASGI GET trends", bare, admin))
    bare = per_request_us(wsgi_driver(bare_wsgi, "/trends", None))
    admin = per_request_us(wsgi_driver(wsgi_admin, "/trends", f"Bearer {TOKEN}"))
    rows.append(("WSGI GET trends", bare, admin))
    opened = per_request_us(wsgi_driver(wsgi_admin, "/health", None))
    checked = per_request_us(wsgi_driver(wsgi_admin, "/health", f"Bearer {TOKEN}"))
    rows.append(("WSGI health: open vs bearer", opened, checked))

    print(f"{'case':<30} {'baseline us':>12} {'admin us':>10} {'ratio':>7} {'overhead us':>12}")
    for name, base, measured in rows:
        print(
            f"{name:<30} {base:>12.2f} {measured:>10.2f} {measured / base:>7.2f} "
            f"{measured - base:>12.2f}"
        )


if __name__ == "__main__":
    main()
