"""Benchmarks for perfkit.queries, measured side by side in one run.

1. ``TimedPool.connection()`` + ``SELECT 1`` against raw ``psycopg_pool.ConnectionPool``
   on the same PostgreSQL (and the async twins): the ratio, target <= 1.03.
2. QueryStats memory over 1 000 000 statements of 10 000 distinct fingerprints: RSS
   should stay flat once the fingerprint cap is reached.

    python benchmarks/bench_queries.py [--url postgresql://...] [--rounds 40] [--loops 200]

The server backend each pool's connection talks to is pinned to the benchmark's own core
where the OS allows it (root, or the same user as the server): whether a backend runs on the
client's core or the other one changes a loopback round trip by about 4x here (60 vs 300 us
per statement, for raw psycopg_pool too), which decides the ratio more than either library.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

from psycopg_pool import AsyncConnectionPool, ConnectionPool

from perfkit.queries import AsyncTimedPool, QueryStats, TimedPool


def sync_loop(pool: Any, loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        with pool.connection() as conn:
            conn.execute("SELECT 1")
    return time.perf_counter() - start


async def async_loop(pool: Any, loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
    return time.perf_counter() - start


def pin_backends(*pools: Any) -> str:
    """Run this process and the backends of ``pools`` (one connection each) on one core."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    try:
        for pool in pools:
            with pool.connection() as conn:
                row = conn.execute("SELECT pg_backend_pid()").fetchone()
            os.sched_setaffinity(row[0], {core})
    except OSError as exc:  # not allowed, or the server is on another host
        return f"backends not pinned ({exc.strerror})"
    return f"client and backends pinned to core {core}"


def report(name: str, raw_times: list[float], timed_times: list[float], loops: int) -> None:
    """Print the median of the per-round ratios and the ratio of the best rounds."""
    ratios = [timed / raw for raw, timed in zip(raw_times, timed_times, strict=True)]
    per_call = min(raw_times) / loops * 1e6
    print(
        f"{name}: ratio {statistics.median(ratios):.3f} (median of {len(ratios)} paired "
        f"rounds of {loops}), best-round ratio {min(timed_times) / min(raw_times):.3f}; "
        f"raw {per_call:.0f} µs per call; target <= 1.03"
    )


def bench_sync(url: str, rounds: int, loops: int) -> None:
    with (
        ConnectionPool(url, min_size=1, max_size=1, open=True) as raw,
        TimedPool(url, min_size=1, max_size=1, open=True) as timed,
    ):
        raw.wait()
        timed.wait()
        print(pin_backends(raw, timed))
        sync_loop(raw, loops)  # warm up (psycopg prepares SELECT 1 after 5 runs)
        sync_loop(timed, loops)
        raw_times: list[float] = []
        timed_times: list[float] = []
        for index in range(rounds):
            pair = [(raw, raw_times), (timed, timed_times)]
            # alternate which goes first, so that drift hits both alike
            for pool, times in pair if index % 2 == 0 else reversed(pair):
                times.append(sync_loop(pool, loops))
        report("sync  connection()+SELECT 1", raw_times, timed_times, loops)


async def bench_async(url: str, rounds: int, loops: int) -> None:
    async with (
        AsyncConnectionPool(url, min_size=1, max_size=1, open=False) as raw,
        AsyncTimedPool(url, min_size=1, max_size=1) as timed,
    ):
        await raw.wait()
        await timed.wait()
        await async_loop(raw, loops)
        await async_loop(timed, loops)
        raw_times: list[float] = []
        timed_times: list[float] = []
        for index in range(rounds):
            pair = [(raw, raw_times), (timed, timed_times)]
            for pool, times in pair if index % 2 == 0 else reversed(pair):
                times.append(await async_loop(pool, loops))
        report("async connection()+SELECT 1", raw_times, timed_times, loops)


def rss_mib() -> float:
    """Current resident set size, from /proc (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_memory(statements: int = 1_000_000, distinct: int = 10_000) -> None:
    stats = QueryStats(max_fingerprints=1000)
    texts = [f"SELECT c{i} FROM t{i % 97} WHERE id = %s" for i in range(distinct)]
    before = rss_mib()
    checkpoints = {10_000, 100_000, 500_000, statements}
    start = time.perf_counter()
    for number in range(1, statements + 1):
        stats.record(texts[number % distinct], 0.0002 + (number % 50) * 1e-5, 1)
        if number in checkpoints:
            snapshot = stats.stats(top=0)
            print(
                f"stats after {number:>9,} statements: RSS {rss_mib():7.1f} MiB "
                f"(+{rss_mib() - before:5.1f}), tracked {snapshot.fingerprints_tracked}, "
                f"evicted {snapshot.fingerprints_evicted:,}"
            )
    elapsed = time.perf_counter() - start
    print(
        f"memory: RSS before {before:.1f} MiB, after {rss_mib():.1f} MiB; "
        f"record() {elapsed / statements * 1e6:.2f} µs per statement "
        f"({distinct:,} distinct SQL texts, cache 4096: most are cache misses)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--url", default=default)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--loops", type=int, default=200)
    parser.add_argument("--statements", type=int, default=1_000_000)
    args = parser.parse_args()
    bench_sync(args.url, args.rounds, args.loops)
    asyncio.run(bench_async(args.url, args.rounds, args.loops))
    bench_memory(args.statements)


if __name__ == "__main__":
    main()
