"""What tracing costs: cache hits and statement records with perfkit.otel off and on.

    python benchmarks/bench_otel.py [--redis-url URL] [--runs 3] [--quick]

Off and traced rounds alternate in one process (``perfkit.otel.instrument()`` fills the
telemetry hooks and ``uninstrument()`` empties them: switching costs nothing). Traced: the
OpenTelemetry SDK's ``TracerProvider`` with a ``BatchSpanProcessor`` whose exporter drops
the spans. Rows:

- an L1 hit: ``RedisService(l1=True).get``, a sync ``@cached_query`` (2 tags);
- a Redis hit: ``RedisService.get``, ``@cached_query`` (2 tags) sync and async;
- ``QueryStats.record`` (the statement hook, no I/O);
- instrumented while no TracerProvider is configured: a Redis ``get`` (the hook returns at
  once).

Times are the process's CPU time (``time.process_time``: the span processor's export
thread included), not the wall clock: on a loaded machine a long traced batch's wall clock
counts the time the process waited for a core (a span measured 137 us by the wall clock,
23 us of CPU, at load 8 on 2 cores). Per run, the median over adjacent rounds of the CPU
time tracing adds per call (us) and of the ratio traced / off; printed as the median of
the runs [min-max]. Instruction counts, which the load does not move at all, come from
``instructions_hits.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_cache
from _common import dropping_tracer_provider, redis_server, rotated_orders

import perfkit.otel
from perfkit.cache import AsyncRedisService, RedisService, cached_query
from perfkit.queries import QueryStats

TAGS = ["products", "category:{category}"]


def paired(batch: Callable[[], None], calls: int, rounds: int, traced: Any) -> tuple[float, float]:
    """(us added per call, ratio traced / off): medians over adjacent rounds of ``batch``
    (``calls`` calls), off and traced in rotated order. ``traced``: what ``instrument()``
    is given (a provider, or None for none)."""
    times: dict[str, list[float]] = {"off": [], "traced": []}
    for index, order in enumerate(rotated_orders(["off", "traced"], rounds + 1)):
        for name in order:
            if name == "traced":
                perfkit.otel.instrument(tracer_provider=traced)
            start = time.process_time()
            batch()
            elapsed = (time.process_time() - start) / calls
            perfkit.otel.uninstrument()
            if index:
                times[name].append(elapsed)
    pairs = list(zip(times["off"], times["traced"], strict=True))
    return (
        statistics.median((t - o) * 1e6 for o, t in pairs),
        statistics.median(t / o for o, t in pairs),
    )


def one_run(url: str, ns: str, rounds: int, scale: int) -> dict[str, tuple[float, float]]:
    provider = dropping_tracer_provider()
    value = bench_cache.catalogue("books", 1)
    near = RedisService(url, namespace=f"{ns}-l1", default_ttl=600, l1=True)
    plain = RedisService(url, namespace=ns, default_ttl=600)
    aplain = AsyncRedisService(url, namespace=ns, default_ttl=600)
    loop = asyncio.new_event_loop()
    stats = QueryStats()

    @cached_query(ttl=600, tags=TAGS, cache=near)
    def l1_products(category: str, page: int = 1) -> Any:
        return bench_cache.catalogue(category, page)

    @cached_query(ttl=600, tags=TAGS, cache=plain)
    def products(category: str, page: int = 1) -> Any:
        return bench_cache.catalogue(category, page)

    @cached_query(ttl=600, tags=TAGS, cache=aplain)
    async def aproducts(category: str, page: int = 1) -> Any:
        return bench_cache.catalogue(category, page)

    async def async_hits(n: int) -> None:
        for _ in range(n):
            await aproducts("books")

    def repeat(call: Callable[[], Any], n: int) -> Callable[[], None]:
        def batch() -> None:
            for _ in range(n):
                call()

        return batch

    try:
        assert near.wait_l1_ready()
        near.set("plain", value)
        plain.set("plain", value)
        l1_before = near.stats().l1_hits
        for _ in range(3):  # fill L1 once the pushes of our own writes have passed
            near.get("plain")
            l1_products("books")
            time.sleep(0.05)
        l1, hits, records = 2000 * scale, 100 * scale, 5000 * scale
        out = {
            "L1 hit: get": paired(repeat(lambda: near.get("plain"), l1), l1, rounds, provider),
            "L1 hit: @cached_query (2 tags)": paired(
                repeat(lambda: l1_products("books"), l1), l1, rounds, provider
            ),
            "Redis hit: get": paired(
                repeat(lambda: plain.get("plain"), hits), hits, rounds, provider
            ),
            "Redis hit: @cached_query (2 tags)": paired(
                repeat(lambda: products("books"), hits), hits, rounds, provider
            ),
            "Redis hit: async @cached_query (2 tags)": paired(
                lambda: loop.run_until_complete(async_hits(hits)), hits, rounds, provider
            ),
            "QueryStats.record (no I/O)": paired(
                repeat(lambda: stats.record("SELECT * FROM items WHERE id = 1", 1e-4), records),
                records,
                rounds,
                provider,
            ),
            "no TracerProvider configured: Redis hit get": paired(
                repeat(lambda: plain.get("plain"), hits), hits, rounds, None
            ),
        }
        l1_hits = near.stats().l1_hits - l1_before
        if l1_hits < 4 * rounds * l1:
            raise SystemExit(f"only {l1_hits} of the L1 rows' reads were L1 hits")
        return out
    finally:
        near.clear()
        plain.clear()
        near.close()
        plain.close()
        loop.run_until_complete(aplain.close())
        loop.close()
        provider.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", help="a Redis server (default: as the tests find one)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args()
    rounds, scale = (5, 1) if args.quick else (15, 2)
    runs = []
    with redis_server(args.redis_url, bench_cache.BENCH_DB) as url:
        for _ in range(args.runs):
            runs.append(one_run(url, f"perfkit-bench-otel-{uuid.uuid4().hex[:10]}", rounds, scale))
    print(f"{'tracing on vs off, per call':45} {'CPU time added (us)':>24} {'ratio':>22}")
    for name in runs[0]:
        added = [run[name][0] for run in runs]
        ratio = [run[name][1] for run in runs]
        print(
            f"{name:45} {statistics.median(added):+8.2f} [{min(added):+.2f}-{max(added):+.2f}]"
            f" {statistics.median(ratio):8.2f} [{min(ratio):.2f}-{max(ratio):.2f}]"
        )


if __name__ == "__main__":
    main()
