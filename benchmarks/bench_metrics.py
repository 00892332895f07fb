"""Metrics benchmarks, measured side by side in one run (ratios, not absolute targets).
What tracing costs (perfkit.otel) is measured by ``bench_otel.py``.

    python benchmarks/bench_metrics.py

1. Recording: perfkit's histogram child ``observe`` vs prometheus_client's child
   ``Histogram.observe`` (target: ratio <= 0.75). Then ``observe`` on perfkit's bucket
   layout (209 bounds, 50 µs floor) paired against the same child on the layout it
   replaced (Prometheus' 14 default bounds), over durations from 50 µs to 2 s: the time
   added per observation and the ratio, median of 3 runs [min-max]. Only this pair:
   ``python benchmarks/bench_metrics.py --layout``.
2. Request middleware cost: a routed Starlette app and a Flask app, driven in-process,
   bare vs wrapped in the request metrics (and metrics + compression), in short
   alternating rounds; per run the median over adjacent pairs of the time added per
   request (us) and of the ratio, printed as the median of 3 runs [min-max].
3. gzip (level 6) and brotli (quality 5) throughput and ratio on a JSON payload.
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
from _common import interleave

from perfkit.http import (
    BROTLI_AVAILABLE,
    CompressionMiddleware,
    MetricsMiddleware,
    WSGICompressionMiddleware,
    WSGIMetricsMiddleware,
)
from perfkit.metrics import DEFAULT_BUCKETS, MetricsRegistry, RequestMetrics
from perfkit.metrics.registry import HistogramChild

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


# The layout perfkit's histograms had before the 50 µs one: Prometheus' default buckets.
OLD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def bench_layout() -> None:
    # Durations spread over the layouts (log-uniform, 50 µs to 2 s), the same for both.
    values = [50e-6 * 40_000 ** (i / 999) for i in range(1000)]
    values = values[::2] + values[1::2]  # not sorted: the branch predictor sees traffic

    def observing(bounds: tuple[float, ...]) -> Callable[[], None]:
        observe = HistogramChild(bounds).observe

        def run() -> None:
            for value in values:
                observe(value)

        return run

    print("observe, 209-bound layout vs the 14-bound one it replaced: "
          + runs(observing(OLD_BUCKETS), observing(DEFAULT_BUCKETS), 20, len(values)))  # fmt: skip


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
    print(
        f"ASGI Starlette {path}: request metrics {runs(call(app), call(metrics), 200)}; "
        f"metrics + compression/ETag {runs(call(app), call(both), 200)}"
    )
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
    print(
        f"WSGI Flask /items/<int:item_id>: request metrics "
        f"{runs(call(app), call(metrics), 200)}; "
        f"metrics + compression/ETag {runs(call(app), call(both), 200)}"
    )


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
    parser.add_argument("--layout", action="store_true", help="only the bucket layout pair")
    if parser.parse_args().layout:
        bench_layout()
        raise SystemExit(0)
    bench_recording()
    bench_layout()
    bench_asgi("/items/7")
    bench_asgi("/v1/orders/7")
    bench_wsgi()
    bench_compression()
