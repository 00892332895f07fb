"""Metrics benchmarks, measured side by side in one run (ratios, not absolute targets).

    python benchmarks/bench_metrics.py

1. Recording: perfkit's histogram child ``observe`` vs prometheus_client's child
   ``Histogram.observe`` (target: ratio <= 0.75).
2. Request middleware overhead per request over a bare ASGI app and a bare WSGI app,
   driven in-process (target: <= 15 us), with and without the compression middleware.
3. gzip (level 6) and brotli (quality 5) throughput and ratio on a JSON payload.
"""

from __future__ import annotations

import asyncio
import json
import time
import timeit
import zlib
from collections.abc import Callable
from typing import Any

import prometheus_client

from perfkit.metrics import (
    BROTLI_AVAILABLE,
    CompressionMiddleware,
    MetricsMiddleware,
    MetricsRegistry,
    RequestMetrics,
    WSGICompressionMiddleware,
    WSGIMetricsMiddleware,
)

ROUNDS = 7


def best(fn: Callable[[], object], number: int) -> float:
    """Seconds per call, the best of ROUNDS rounds."""
    return min(timeit.repeat(fn, number=number, repeat=1)[0] / number for _ in range(ROUNDS))


def side_by_side(a: Callable[[], float], b: Callable[[], float]) -> tuple[float, float]:
    """Interleave rounds of a and b so that noise on a shared machine hits both alike."""
    xs, ys = [], []
    for _ in range(ROUNDS):
        xs.append(a())
        ys.append(b())
    return min(xs), min(ys)


def bench_recording() -> None:
    n = 200_000
    ours = MetricsRegistry().histogram("x_seconds", "x", ("route",)).labels("/a")
    theirs = prometheus_client.Histogram(
        "x_seconds", "x", ("route",), registry=prometheus_client.CollectorRegistry()
    ).labels("/a")
    o_observe, t_observe = ours.observe, theirs.observe

    def run(observe: Callable[[float], None]) -> float:
        start = time.perf_counter()
        for _ in range(n):
            observe(0.042)
        return (time.perf_counter() - start) / n

    o, t = side_by_side(lambda: run(o_observe), lambda: run(t_observe))
    print(f"histogram observe: perfkit {o * 1e9:.0f} ns, prometheus_client {t * 1e9:.0f} ns, "
          f"ratio {o / t:.2f} (target <= 0.75)")  # fmt: skip


async def _bare_asgi(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": b'{"ok": true}'})


def _bare_wsgi(environ: Any, start_response: Any) -> Any:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"ok": true}']


def report(kind: str, bare: float, wrapped: float, full: float) -> None:
    print(f"{kind}: bare app {bare * 1e6:.2f} us/request; request metrics "
          f"+{(wrapped - bare) * 1e6:.2f} us (target <= 15); metrics + compression/ETag "
          f"+{(full - bare) * 1e6:.2f} us")  # fmt: skip


def bench_asgi(n: int = 20_000) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    def measure(app: Any) -> float:
        async def loop() -> float:
            start = time.perf_counter()
            for i in range(n):
                scope = {"type": "http", "method": "GET", "path": f"/items/{i % 50}",
                         "headers": [(b"accept-encoding", b"gzip")]}  # fmt: skip
                await app(scope, receive, send)
            return (time.perf_counter() - start) / n

        return asyncio.run(loop())

    metrics = MetricsMiddleware(_bare_asgi, metrics=RequestMetrics(MetricsRegistry()))
    both = MetricsMiddleware(CompressionMiddleware(_bare_asgi),
                             metrics=RequestMetrics(MetricsRegistry()))  # fmt: skip
    bare, wrapped = side_by_side(lambda: measure(_bare_asgi), lambda: measure(metrics))
    _, full = side_by_side(lambda: measure(_bare_asgi), lambda: measure(both))
    report("ASGI", bare, wrapped, full)


def bench_wsgi(n: int = 20_000) -> None:
    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        return None

    def measure(app: Any) -> float:
        start = time.perf_counter()
        for i in range(n):
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/items/{i % 50}",
                       "HTTP_ACCEPT_ENCODING": "gzip"}  # fmt: skip
            body = app(environ, start_response)
            for _ in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return (time.perf_counter() - start) / n

    metrics = WSGIMetricsMiddleware(_bare_wsgi, metrics=RequestMetrics(MetricsRegistry()))
    both = WSGIMetricsMiddleware(WSGICompressionMiddleware(_bare_wsgi),
                                 metrics=RequestMetrics(MetricsRegistry()))  # fmt: skip
    bare, wrapped = side_by_side(lambda: measure(_bare_wsgi), lambda: measure(metrics))
    _, full = side_by_side(lambda: measure(_bare_wsgi), lambda: measure(both))
    report("WSGI", bare, wrapped, full)


def bench_compression() -> None:
    payload = json.dumps(
        [{"id": i, "name": f"product {i}", "price": round(i * 1.37, 2), "tags": ["a", "b"],
          "description": "A fine product, in stock, ships in two days."} for i in range(2000)]
    ).encode()  # fmt: skip
    size = len(payload)

    def gzip6() -> bytes:
        z = zlib.compressobj(6, zlib.DEFLATED, 31)
        return z.compress(payload) + z.flush()

    seconds = best(gzip6, 5)
    print(f"gzip level 6 on {size / 1024:.0f} KiB JSON: {size / seconds / 2**20:.0f} MiB/s, "
          f"compressed to {len(gzip6()) / size:.1%} of the original")  # fmt: skip
    if BROTLI_AVAILABLE:
        import brotli

        seconds = best(lambda: brotli.compress(payload, quality=5), 5)
        ratio = len(brotli.compress(payload, quality=5)) / size
        print(f"brotli quality 5 on the same JSON: {size / seconds / 2**20:.0f} MiB/s, "
              f"compressed to {ratio:.1%}")  # fmt: skip


if __name__ == "__main__":
    bench_recording()
    bench_asgi()
    bench_wsgi()
    bench_compression()
