"""CPU instructions per cache hit, with tracing off and on (perfkit.otel on the SDK).

Wall-clock ratios move with the machine's load; an instruction count does not. Each case
runs under ``valgrind --tool=callgrind`` twice, with a short and a long loop of hits; the
difference over the extra hits is the cost of one hit in the client process (redis-py,
perfkit, OpenTelemetry's SDK, the interpreter; not the server, not the kernel).

    python benchmarks/instructions_hits.py [--redis-url URL] [--short 200] [--long 1200]
                                           [--baseline-src DIR]

Cases: an L1 hit (``get`` and a sync ``@cached_query`` with 2 tags) and a Redis hit (``get``,
``@cached_query`` sync and async), on the benchmark's page of 20 products. ``off``: no
subscriber (what every process without ``perfkit.otel.instrument()`` runs); ``traced``:
instrumented with the SDK's ``TracerProvider`` and a ``BatchSpanProcessor`` whose exporter
drops the spans (the export thread's work is counted too). ``--baseline-src DIR`` also
counts the ``off`` cases with perfkit imported from ``DIR`` (e.g. an older checkout's
``src``: ``git archive <commit> src | tar -x -C /tmp/base``), for a before/after.

It needs valgrind, and takes several minutes (callgrind runs the interpreter ~50x slower).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import dropping_tracer_provider, redis_server

WARM_UP = 100  # hits before the counted ones
CASES = ("l1 get", "l1 cached_query", "redis get", "redis cached_query",
         "async redis cached_query")  # fmt: skip


def child(case: str, traced: bool, url: str, loops: int) -> None:
    import bench_cache

    from perfkit.cache import RedisService, cached_query

    if traced:
        import perfkit.otel

        perfkit.otel.instrument(tracer_provider=dropping_tracer_provider())
    namespace = f"perfkit-instructions-{os.getpid()}"
    value = bench_cache.catalogue("books", 1)
    if case.startswith("async"):
        asyncio.run(_async_child(url, namespace, loops))
        return
    l1 = case.startswith("l1")
    cache = RedisService(url, namespace=namespace, default_ttl=600, l1=l1)

    @cached_query(ttl=600, tags=["products", "category:{category}"], cache=cache)
    def products(category: str, page: int = 1) -> Any:
        return bench_cache.catalogue(category, page)

    cache.set("plain", value)
    hit: Callable[[], Any] = (
        (lambda: cache.get("plain")) if case.endswith("get") else lambda: products("books")
    )
    if l1:
        assert cache.wait_l1_ready()
        near = cache._near
        assert near is not None
        while near.hits < 3:  # kept in L1 once the push of our own write has passed
            hit()
    for _ in range(WARM_UP + loops):
        hit()
    cache.clear()
    cache.close()


async def _async_child(url: str, namespace: str, loops: int) -> None:
    import bench_cache

    from perfkit.cache import AsyncRedisService, cached_query

    cache = AsyncRedisService(url, namespace=namespace, default_ttl=600)

    @cached_query(ttl=600, tags=["products", "category:{category}"], cache=cache)
    async def products(category: str, page: int = 1) -> Any:
        return bench_cache.catalogue(category, page)

    for _ in range(WARM_UP + loops):
        await products("books")
    await cache.clear()
    await cache.close()


def instructions(case: str, traced: bool, url: str, loops: int, src: str | None) -> int:
    """Instructions the client process ran for ``loops`` hits (plus start-up)."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--child", case, "traced" if traced else "off",
                str(loops), "--redis-url", url]  # fmt: skip
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or found is None:
        raise SystemExit(f"{case}: no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", help="a Redis server (default: as the tests find one)")
    parser.add_argument("--short", type=int, default=200)
    parser.add_argument("--long", type=int, default=1200)
    parser.add_argument("--baseline-src", help="also count the off cases with perfkit from here")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "TRACING", "LOOPS"))
    args = parser.parse_args()
    if args.child:
        case, tracing, loops = args.child
        child(case, tracing == "traced", args.redis_url, int(loops))
        return
    variants: list[tuple[str, bool, str | None]] = [("off", False, None), ("traced", True, None)]
    if args.baseline_src:
        variants.insert(0, ("baseline off", False, str(Path(args.baseline_src).resolve())))
    with redis_server(args.redis_url, 11) as url:
        runs = [
            (case, label, traced, src, loops)
            for case in CASES
            for label, traced, src in variants
            for loops in (args.short, args.long)
        ]
        with ThreadPoolExecutor(max_workers=2) as executor:  # callgrind is single-threaded
            found = executor.map(
                lambda run: instructions(run[0], run[2], url, run[4], run[3]), runs
            )
            counts = {
                (case, label, loops): n
                for (case, label, _, _, loops), n in zip(runs, found, strict=True)
            }
    extra = args.long - args.short
    for case in CASES:
        per = {
            label: (counts[case, label, args.long] - counts[case, label, args.short]) / extra
            for label, _, _ in variants
        }
        cells = [f"{label} {count:,.0f}" for label, count in per.items()]
        if "baseline off" in per:
            cells.append(f"off / baseline {per['off'] / per['baseline off']:.3f}x")
        cells.append(f"traced - off {per['traced'] - per['off']:+,.0f} "
                     f"({per['traced'] / per['off']:.2f}x)")  # fmt: skip
        print(f"{case:26} instructions per hit: " + "; ".join(cells))


if __name__ == "__main__":
    main()
