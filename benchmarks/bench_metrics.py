"""Metrics benchmarks, measured side by side in one run (ratios, not absolute targets).

    python benchmarks/bench_metrics.py [--redis-url URL]

1. Recording: perfkit's histogram child ``observe`` vs prometheus_client's child
   ``Histogram.observe`` (target: ratio <= 0.75).
2. Request middleware cost: a routed Starlette app and a Flask app, driven in-process,
   bare vs wrapped in the request metrics (and metrics + compression), in short
   alternating rounds; per run the median over adjacent pairs of the time added per
   request (us) and of the ratio, printed as the median of 3 runs [min-max].
3. OpenTelemetry off: after ``perfkit.otel.instrument()`` + ``uninstrument()`` the
   methods are perfkit's own (checked); the one hook left (job enqueue) next to a cache
   get (target ratio 1.00); and ``RedisService.get`` / ``QueryStats.record`` instrumented
   while no TracerProvider is configured (calls go straight to perfkit's code).
4. gzip (level 6) and brotli (quality 5) throughput and ratio on a JSON payload.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import time
import timeit
import zlib
from collections.abc import Callable
from typing import Any

import prometheus_client
from _common import interleave, redis_server

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


RUNS = 3
PAIRS = 15


def paired(bare: Callable[[], Any], other: Callable[[], Any], batch: int) -> tuple[float, float]:
    """Median over adjacent rounds of (other - bare) seconds per call and other / bare."""
    samples = interleave({"bare": bare, "other": other}, PAIRS, batch)
    pairs = list(zip(samples["bare"], samples["other"], strict=True))
    return (statistics.median(o - b for b, o in pairs),
            statistics.median(o / b for b, o in pairs))  # fmt: skip


def runs(bare: Callable[[], Any], other: Callable[[], Any], batch: int, calls: int = 1) -> str:
    """``added us (ratio)`` as the median of RUNS runs, with the spread [min-max];
    ``calls``: how many calls one contender call makes (the time added is per call)."""
    results = [paired(bare, other, batch) for _ in range(RUNS)]
    added = sorted(r[0] * 1e6 / calls for r in results)
    ratios = sorted(r[1] for r in results)
    return (f"+{added[1]:.2f} us/call [{added[0]:.2f}-{added[-1]:.2f}], "
            f"ratio {ratios[1]:.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}]")  # fmt: skip


def _starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    async def item(request: Any) -> Any:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/items/{item_id}", item),
                             Mount("/v1", routes=[Route("/orders/{order_id}", item)])])  # fmt: skip


def _flask_app() -> Any:
    from flask import Flask, jsonify

    app = Flask("bench")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> Any:
        return jsonify({"ok": True})

    return app


def bench_asgi(path: str = "/items/7") -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    loop = asyncio.new_event_loop()

    def call(app: Any) -> Callable[[], None]:
        def one() -> None:
            scope = {"type": "http", "method": "GET", "path": path, "root_path": "",
                     "query_string": b"", "headers": [(b"accept-encoding", b"gzip")]}  # fmt: skip
            loop.run_until_complete(app(scope, receive, send))

        return one

    app = _starlette_app()
    metrics = MetricsMiddleware(app, metrics=RequestMetrics(MetricsRegistry()))
    both = MetricsMiddleware(CompressionMiddleware(app),
                             metrics=RequestMetrics(MetricsRegistry()))  # fmt: skip
    print(f"ASGI Starlette {path}: request metrics {runs(call(app), call(metrics), 200)}; "
          f"metrics + compression/ETag {runs(call(app), call(both), 200)}")
    loop.close()


def bench_wsgi() -> None:
    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        return lambda data: None

    def call(app: Any) -> Callable[[], None]:
        def one() -> None:
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/items/7", "SERVER_NAME": "b",
                       "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
                       "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_ACCEPT_ENCODING": "gzip"}  # fmt: skip
            body = app(environ, start_response)
            for _ in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

        return one

    app = _flask_app()
    metrics = WSGIMetricsMiddleware(app, metrics=RequestMetrics(MetricsRegistry()))
    both = WSGIMetricsMiddleware(WSGICompressionMiddleware(app),
                                 metrics=RequestMetrics(MetricsRegistry()))  # fmt: skip
    print(f"WSGI Flask /items/<int:item_id>: request metrics "
          f"{runs(call(app), call(metrics), 200)}; "
          f"metrics + compression/ETag {runs(call(app), call(both), 200)}")


def bench_otel_off(redis_url: str) -> None:
    """What perfkit.otel costs when tracing is off, and on with no SDK provider."""
    import perfkit._telemetry
    from perfkit.cache import RedisService
    from perfkit.queries import QueryStats
    from perfkit.settings import Settings

    cache = RedisService(redis_url, namespace="perfkit-bench-otel",
                         settings=Settings(redis_url=redis_url))  # fmt: skip
    stats = QueryStats()
    cache.set("k", 1)

    def get() -> None:
        cache.get("k")

    def record() -> None:
        stats.record("SELECT * FROM items WHERE id = 1", 0.0001)

    def batch(fn: Callable[[], None], n: int, *, traced: bool) -> Callable[[], None]:
        # instrument() patches the classes: a traced batch switches it on and off around
        # its calls, so that plain and traced rounds alternate in one process.
        def run() -> None:
            if traced:
                perfkit.otel.instrument()
            try:
                for _ in range(n):
                    fn()
            finally:
                if traced:
                    perfkit.otel.uninstrument()

        return run

    try:
        own = (RedisService.get, QueryStats.record)
        import perfkit.otel

        perfkit.otel.instrument()
        perfkit.otel.uninstrument()
        restored = (RedisService.get, QueryStats.record) == own
        # Off (extra missing, never instrumented, or uninstrumented) runs perfkit's own
        # methods; the one hook left is the enqueue call: its cost next to one cache get.
        hook = runs(get, lambda: (perfkit._telemetry.enqueue_meta(), get()), 200)
        print(f"OTel off: methods are perfkit's own again after uninstrument(): {restored}; "
              f"the enqueue hook over a cache get: {hook}")
        gets = runs(batch(get, 200, traced=False), batch(get, 200, traced=True), 1, 200)
        records = runs(batch(record, 2000, traced=False), batch(record, 2000, traced=True), 1,
                       2000)  # fmt: skip
        print(f"OTel instrumented, no TracerProvider configured: cache get {gets}; "
              f"QueryStats.record {records}")
    finally:
        cache.delete("k")
        cache.close()


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", help="a Redis server (default: as the tests find one)")
    options = parser.parse_args()
    bench_recording()
    bench_asgi("/items/7")
    bench_asgi("/v1/orders/7")
    bench_wsgi()
    with redis_server(options.redis_url, 9) as url:
        bench_otel_off(url)
    bench_compression()
