"""Cache benchmarks (issue 2): ratios measured side by side in one run against one Redis.

    python benchmarks/bench_cache.py [--redis-url URL] [--quick] [--only "sync hits" ...]

1. A ``cached_query`` hit vs redis-py ``GET`` + ``msgspec.msgpack.decode`` of the same value
   (a list of 20 product dicts), sync and async, untagged and tagged; and (sync) a hit
   decoded into ``list[Struct]`` vs a typed decode of the same bytes. Target <= 1.10.
2. ``invalidate_tags`` on a tag covering 100 000 keys vs a tag covering 1 key. Target <= 1.5.
3. Stampede: loader calls of 100 cold async callers, 50 threads, 4 processes x 25 threads,
   next to a naive GET-then-SET cache under the same load. Target 1 call each.

The contenders of a row run interleaved over many rounds (rotating order); a row's ratio is
the median time per call of perfkit over the median of its baseline. Redis is found as the
tests find it (``--redis-url``, ``PERFKIT_TEST_REDIS_URL`` / ``REDIS_URL``, 127.0.0.1:6379,
else an embedded Valkey); the run uses DB 11 and a namespace of its own, and deletes only its
own keys at the end. dogpile.cache, aiocache and cashews rows are added for context when they
are installed (they are not dependencies of perfkit). Results also go to
``benchmarks/results/cache.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import redis
import redis.asyncio
from _common import Row, interleave, redis_server, rotated_orders

from perfkit.cache import AsyncRedisService, RedisService, cached_query
from perfkit.settings import Settings, redacted_url

BENCH_DB = 11
HIT_TARGET = 1.10
INVALIDATE_TARGET = 1.5
LOADER_SECONDS = 0.2
RESULTS = Path(__file__).resolve().parent / "results" / "cache.json"
_MISS = object()


@dataclass
class Plan:
    """How much work each section does."""

    rounds: int = 150
    sync_batch: int = 20
    async_batch: int = 20
    tagged_keys: int = 100_000
    invalidate_rounds: int = 5
    tags_per_round: int = 3
    fill_chunk: int = 2_000
    async_callers: int = 100
    threads: int = 50
    processes: int = 4
    threads_per_process: int = 25


QUICK = Plan(rounds=60, sync_batch=10, async_batch=10, tagged_keys=10_000)


def catalogue(category: str, page: int) -> list[dict[str, Any]]:
    """A page of 20 products: the value every contender caches."""
    return [
        {
            "id": page * 100 + i,
            "sku": f"{category[:3].upper()}-{page:03d}-{i:04d}",
            "name": f"{category.title()} item {i} with a reasonably long display name",
            "price": round(9.99 + i * 1.25, 2),
            "currency": "EUR",
            "in_stock": i % 3 != 0,
            "stock": 17 * i % 50,
            "rating": 3.5 + (i % 3) / 2,
            "tags": [category, "sale" if i % 4 == 0 else "regular"],
            "updated_at": "2024-05-01T12:00:00Z",
        }
        for i in range(20)
    ]


class ProductStruct(msgspec.Struct):
    """A catalogue item as a msgspec Struct: the typed-hit rows decode into it."""

    id: int
    sku: str
    name: str
    price: float
    currency: str
    in_stock: bool
    stock: int
    rating: float
    tags: list[str]
    updated_at: str


# -- timing -------------------------------------------------------------------------------------


async def ainterleave(
    calls: dict[str, Callable[[], Awaitable[Any]]], rounds: int, batch: int
) -> dict[str, list[float]]:
    """As :func:`interleave`, awaiting each call."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for index, order in enumerate(rotated_orders(list(calls), rounds + 1)):
        for name in order:
            call = calls[name]
            start = time.perf_counter()
            for _ in range(batch):
                await call()
            if index:
                samples[name].append((time.perf_counter() - start) / batch)
    return samples


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us"


def ratio_row(
    name: str,
    samples: dict[str, list[float]],
    baseline: str,
    contender: str,
    target: float | None,
) -> Row:
    """Median of ``contender`` over median of ``baseline`` (min ratio kept in the detail)."""
    base, mine = samples[baseline], samples[contender]
    ratio = statistics.median(mine) / statistics.median(base)
    verdict = "info" if target is None else ("PASS" if ratio <= target else "MISS")
    return Row(
        name=name,
        baseline=_us(statistics.median(base)),
        perfkit=_us(statistics.median(mine)),
        ratio=ratio,
        target="-" if target is None else f"<= {target:.2f}",
        verdict=verdict,
        detail={
            "baseline": baseline,
            "contender": contender,
            "median_ratio": ratio,
            "min_ratio": min(mine) / min(base),
            "paired_median_ratio": statistics.median(
                m / b for m, b in zip(mine, base, strict=True)
            ),
            "baseline_us": [round(s * 1e6, 2) for s in base],
            "contender_us": [round(s * 1e6, 2) for s in mine],
        },
    )


def skipped(name: str, why: str) -> Row:
    return Row(name=name, baseline="-", perfkit="-", ratio=None, target="-", verdict="skip",
               detail={"skipped": why})  # fmt: skip


def service_problem(service: RedisService | AsyncRedisService) -> str | None:
    """Why a service's numbers are not Redis's (it fell back to memory, or counted errors)."""
    errors = service._stats.counted()["errors"]
    if not service.fallback_active and not errors:
        return None
    state = "is in memory fallback" if service.fallback_active else "recovered"
    return f"the service counted {errors} Redis errors and {state}"


def flagged(rows: list[Row], problem: str | None) -> list[Row]:
    """``rows``, failed with ``problem`` when there is one."""
    if problem is not None:
        for row in rows:
            row.detail["problem"] = problem
            if row.verdict == "PASS":
                row.verdict = "MISS"
    return rows


# -- 1. hits ------------------------------------------------------------------------------------

BASELINE = "redis-py GET + msgspec decode"
UNTAGGED = "cached_query (untagged)"
TAGGED = "cached_query (tags=[products, category:{category}])"
TYPED_BASELINE = "redis-py GET + msgspec decode(type=list[Struct])"
TYPED = "cached_query -> list[Struct]"


def bench_hits_sync(url: str, ns: str, plan: Plan) -> list[Row]:
    service = RedisService(url, namespace=ns, default_ttl=600)
    raw = redis.Redis.from_url(url)
    value = catalogue("books", 1)
    raw_key = f"{ns}:raw:books:1"
    raw.set(raw_key, msgspec.msgpack.encode(value), ex=600)
    decode = msgspec.msgpack.decode

    # No return annotations: hits are decoded untyped, as the baseline decodes them.
    @cached_query(ttl=600, cache=service)
    def products(category: str, page: int = 1):
        return catalogue(category, page)

    @cached_query(ttl=600, tags=["products", "category:{category}"], cache=service)
    def tagged_products(category: str, page: int = 1):
        return catalogue(category, page)

    # Typed: hits decoded into Structs, against a typed decode of the same bytes.
    @cached_query(ttl=600, cache=service)
    def typed_products(category: str, page: int = 1) -> list[ProductStruct]:
        return msgspec.convert(catalogue(category, page), list[ProductStruct])

    typed_decode = msgspec.msgpack.Decoder(list[ProductStruct]).decode
    typed_value = msgspec.convert(value, list[ProductStruct])

    calls: dict[str, Callable[[], Any]] = {
        BASELINE: lambda: decode(raw.get(raw_key)),
        UNTAGGED: lambda: products("books", page=1),
        TAGGED: lambda: tagged_products("books", page=1),
        TYPED_BASELINE: lambda: typed_decode(raw.get(raw_key)),
        TYPED: lambda: typed_products("books", page=1),
    }
    context, notes = _dogpile(url, ns)
    calls.update(context)
    for name, call in calls.items():  # fill, and check every contender returns the value
        call()
        if call() != (typed_value if name in (TYPED, TYPED_BASELINE) else value):
            raise SystemExit(f"sync hits: {name} returned something else")
    service.reset_stats()
    samples = interleave(calls, plan.rounds, plan.sync_batch)
    stats = service._stats
    if stats.misses or stats.hits != 3 * (plan.rounds + 1) * plan.sync_batch:
        raise SystemExit(f"sync hits: expected only hits, got {stats.hits} / {stats.misses}")
    rows = [
        ratio_row(f"sync hit: {UNTAGGED}", samples, BASELINE, UNTAGGED, HIT_TARGET),
        ratio_row(f"sync hit: {TAGGED}", samples, BASELINE, TAGGED, HIT_TARGET),
        ratio_row(f"sync hit: {TYPED}", samples, TYPED_BASELINE, TYPED, HIT_TARGET),
    ]
    rows += [ratio_row(f"sync hit: {n} (context)", samples, BASELINE, n, None) for n in context]
    rows += [skipped(f"sync hit: {n} (context)", why) for n, why in notes.items()]
    raw.close()
    service.close()
    return flagged(rows, service_problem(service))


def _dogpile(url: str, ns: str) -> tuple[dict[str, Callable[[], Any]], dict[str, str]]:
    name = "dogpile.cache cache_on_arguments (redis, pickle)"
    try:
        from dogpile.cache import make_region
    except ImportError as exc:
        return {}, {name: f"not installed ({exc})"}
    region = make_region(key_mangler=lambda key: f"{ns}:dogpile:{key}").configure(
        "dogpile.cache.redis",
        expiration_time=600,
        arguments={"url": url, "redis_expiration_time": 600},
    )

    @region.cache_on_arguments()
    def dogpile_products(category: str, page: int = 1) -> list[dict[str, Any]]:
        return catalogue(category, page)

    return {name: lambda: dogpile_products("books", page=1)}, {}


async def bench_hits_async(url: str, ns: str, plan: Plan) -> list[Row]:
    service = AsyncRedisService(url, namespace=ns, default_ttl=600)
    raw = redis.asyncio.Redis.from_url(url)
    value = catalogue("books", 1)
    raw_key = f"{ns}:raw:books:1"
    await raw.set(raw_key, msgspec.msgpack.encode(value), ex=600)
    decode = msgspec.msgpack.decode

    # No return annotations: hits are decoded untyped, as the baseline decodes them.
    @cached_query(ttl=600, cache=service)
    async def products(category: str, page: int = 1):
        return catalogue(category, page)

    @cached_query(ttl=600, tags=["products", "category:{category}"], cache=service)
    async def tagged_products(category: str, page: int = 1):
        return catalogue(category, page)

    async def baseline() -> Any:
        return decode(await raw.get(raw_key))

    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "redis.asyncio GET + msgspec decode": baseline,
        UNTAGGED: lambda: products("books", page=1),
        TAGGED: lambda: tagged_products("books", page=1),
    }
    context, notes, closers = _async_context(url, ns)
    calls.update(context)
    try:
        for name, call in calls.items():
            await call()
            if await call() != value:
                raise SystemExit(f"async hits: {name} returned something else")
        service.reset_stats()
        samples = await ainterleave(calls, plan.rounds, plan.async_batch)
    finally:
        for close in closers:
            await close()
    stats = service._stats
    if stats.misses or stats.hits != 2 * (plan.rounds + 1) * plan.async_batch:
        raise SystemExit(f"async hits: expected only hits, got {stats.hits} / {stats.misses}")
    base = "redis.asyncio GET + msgspec decode"
    rows = [
        ratio_row(f"async hit: {UNTAGGED}", samples, base, UNTAGGED, HIT_TARGET),
        ratio_row(f"async hit: {TAGGED}", samples, base, TAGGED, HIT_TARGET),
    ]
    rows += [ratio_row(f"async hit: {n} (context)", samples, base, n, None) for n in context]
    rows += [skipped(f"async hit: {n} (context)", why) for n, why in notes.items()]
    await raw.aclose()
    await service.close()
    return flagged(rows, service_problem(service))


def _async_context(
    url: str, ns: str
) -> tuple[dict[str, Callable[[], Awaitable[Any]]], dict[str, str], list[Callable[[], Any]]]:
    """aiocache and cashews decorators on the same Redis, when installed."""
    calls: dict[str, Callable[[], Awaitable[Any]]] = {}
    notes: dict[str, str] = {}
    closers: list[Callable[[], Any]] = []
    name = "aiocache @cached (redis, json)"
    try:
        from aiocache import Cache, cached
    except ImportError as exc:
        notes[name] = f"not installed ({exc})"
    else:
        parts = urlsplit(url)

        @cached(
            ttl=600,
            cache=Cache.REDIS,
            endpoint=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            db=BENCH_DB,
            password=parts.password,
            namespace=f"{ns}:aiocache:",
        )
        async def aiocache_products(category: str, page: int = 1) -> list[dict[str, Any]]:
            return catalogue(category, page)

        calls[name] = lambda: aiocache_products("books", page=1)
        closers.append(aiocache_products.cache.close)  # type: ignore[attr-defined]
    name = "cashews @cache (redis, pickle)"
    try:
        from cashews import Cache as Cashews
    except ImportError as exc:
        notes[name] = f"not installed ({exc})"
    else:
        cashews = Cashews()
        cashews.setup(url)

        @cashews(ttl=600, key=f"{ns}:cashews:{{category}}:{{page}}")
        async def cashews_products(category: str, page: int = 1) -> list[dict[str, Any]]:
            return catalogue(category, page)

        calls[name] = lambda: cashews_products("books", page=1)
        closers.append(cashews.close)
    return calls, notes, closers


# -- 2. invalidate_tags -------------------------------------------------------------------------


def bench_invalidate(url: str, ns: str, plan: Plan) -> list[Row]:
    """Each round fills the keys again, every key carrying ``tags_per_round`` big tags (each
    of which covers all of them), and one key per small tag; then invalidates each big and
    each small tag once, alternating, timing every call."""
    # A long socket timeout: a chunk of set_many must not make the service fall back to memory.
    settings = msgspec.structs.replace(Settings.from_env(), redis_socket_timeout=30.0)
    service = RedisService(url, namespace=ns, default_ttl=600, settings=settings)
    n, per_round = plan.tagged_keys, plan.tags_per_round
    keys = [f"inv:big:{i}" for i in range(n)]
    probe = random.Random(7).sample(keys, 5)
    big = [f"bench-inv-big-{t}" for t in range(per_round)]
    small = {f"bench-inv-small-{t}": f"inv:small:{t}" for t in range(per_round)}
    samples: dict[str, list[float]] = {"big": [], "small": []}
    fills: list[float] = []
    for r in range(plan.invalidate_rounds):
        start = time.perf_counter()
        for first in range(0, n, plan.fill_chunk):
            chunk = keys[first : first + plan.fill_chunk]
            service.set_many({k: {"id": i, "v": "x"} for i, k in enumerate(chunk)}, tags=big)
        fills.append(time.perf_counter() - start)
        for tag, key in small.items():
            service.set(key, {"id": 0, "v": "x"}, tags=[tag])
        watched = [*probe, *small.values()]
        if any(service.get(k, _MISS) is _MISS for k in watched):
            raise SystemExit("invalidate: freshly filled keys do not hit")
        for big_tag, small_tag in zip(big, small, strict=True):
            pair = [("big", big_tag), ("small", small_tag)]
            for kind, tag in pair[:: 1 if r % 2 else -1]:
                start = time.perf_counter()
                service.invalidate_tags([tag])
                samples[kind].append(time.perf_counter() - start)
        still = [k for k in watched if service.get(k, _MISS) is not _MISS]
        if still:
            raise SystemExit(f"invalidate: {still} still hit after invalidate_tags")
    row = ratio_row(
        f"invalidate_tags: tag over {n:,} keys vs over 1 key", samples, "small", "big",
        INVALIDATE_TARGET,
    )  # fmt: skip
    row.detail["verified_misses_per_round"] = len(probe) + len(small)
    row.detail["fill_seconds"] = [round(f, 3) for f in fills]
    row.detail["fill_chunk"] = plan.fill_chunk
    service.close()
    return flagged([row], service_problem(service))


# -- 3. stampede --------------------------------------------------------------------------------


def storm(call: Callable[[], Any], callers: int) -> list[Any]:
    """``call()`` from ``callers`` threads released together; their results."""
    barrier = threading.Barrier(callers)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(call())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def naive_sync(client: redis.Redis, key: str, counter: str) -> Callable[[], Any]:
    """What a cache without stampede protection does: GET, on a miss load and SET."""

    def call() -> Any:
        raw = client.get(key)
        if raw is not None:
            return msgspec.msgpack.decode(raw)
        client.incr(counter)
        time.sleep(LOADER_SECONDS)
        value = catalogue("reports", 1)
        client.set(key, msgspec.msgpack.encode(value), ex=600)
        return value

    return call


def count_row(name: str, callers: int, naive: int, calls: int) -> Row:
    return Row(
        name=name,
        baseline=f"{naive} calls",
        perfkit=f"{calls} call" + ("s" if calls != 1 else ""),
        ratio=None,
        target="1 call",
        verdict="PASS" if calls == 1 else "MISS",
        detail={"callers": callers, "naive_loader_calls": naive, "loader_calls": calls},
    )


async def bench_stampede_async(url: str, ns: str, plan: Plan) -> Row:
    service = AsyncRedisService(url, namespace=ns, default_ttl=600)
    raw = redis.asyncio.Redis.from_url(url)
    expected = catalogue("reports", 1)
    calls = naive_calls = 0

    @cached_query(ttl=600, cache=service)
    async def daily_report(day: str):
        nonlocal calls
        calls += 1
        await asyncio.sleep(LOADER_SECONDS)
        return catalogue("reports", 1)

    async def naive(day: str) -> Any:
        nonlocal naive_calls
        key = f"{ns}:stampede:naive-async:{day}"
        if (found := await raw.get(key)) is not None:
            return msgspec.msgpack.decode(found)
        naive_calls += 1
        await asyncio.sleep(LOADER_SECONDS)
        await raw.set(key, msgspec.msgpack.encode(catalogue("reports", 1)), ex=600)
        return catalogue("reports", 1)

    n = plan.async_callers
    naive_results = await asyncio.gather(*(naive("2024-05-01") for _ in range(n)))
    results = await asyncio.gather(*(daily_report("2024-05-01") for _ in range(n)))
    if any(r != expected for r in [*results, *naive_results]):
        raise SystemExit("async stampede: a caller got a wrong value")
    await raw.aclose()
    await service.close()
    row = count_row(f"stampede: {n} cold async callers (gather)", n, naive_calls, calls)
    return flagged([row], service_problem(service))[0]


def bench_stampede_threads(url: str, ns: str, plan: Plan) -> Row:
    service = RedisService(url, namespace=ns, default_ttl=600)
    client = redis.Redis.from_url(url)
    counter = threading.Lock()
    calls = 0

    @cached_query(ttl=600, cache=service)
    def daily_report(day: str):
        nonlocal calls
        with counter:
            calls += 1
        time.sleep(LOADER_SECONDS)
        return catalogue("reports", 1)

    n = plan.threads
    naive_counter = f"{ns}:stampede:naive-threads:calls"
    naive = naive_sync(client, f"{ns}:stampede:naive-threads", naive_counter)
    results = storm(naive, n) + storm(lambda: daily_report("2024-05-01"), n)
    if any(r != catalogue("reports", 1) for r in results):
        raise SystemExit("thread stampede: a caller got a wrong value")
    naive_calls = int(client.get(naive_counter) or 0)
    client.close()
    service.close()
    row = count_row(f"stampede: {n} threads (Barrier)", n, naive_calls, calls)
    return flagged([row], service_problem(service))[0]


def _process_worker(url: str, ns: str, threads: int, barrier: Any) -> None:
    """One of the stampede processes: ``threads`` callers, naive cache first, then perfkit."""
    client = redis.Redis.from_url(url)
    service = RedisService(url, namespace=ns, default_ttl=600)

    @cached_query(ttl=600, cache=service)
    def daily_report(day: str):
        client.incr(f"{ns}:stampede:procs:calls")
        time.sleep(LOADER_SECONDS)
        return catalogue("reports", 1)

    naive = naive_sync(client, f"{ns}:stampede:naive-procs", f"{ns}:stampede:naive-procs:calls")
    expected = catalogue("reports", 1)
    for call in (naive, lambda: daily_report("2024-05-01")):
        barrier.wait(timeout=120)  # every process is ready: release them together
        if any(r != expected for r in storm(call, threads)):
            raise SystemExit("process stampede: a caller got a wrong value")
    if (problem := service_problem(service)) is not None:
        client.rpush(f"{ns}:stampede:procs:problems", f"pid {os.getpid()}: {problem}")
    service.close()
    client.close()


def bench_stampede_processes(url: str, ns: str, plan: Plan) -> Row:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(plan.processes)
    workers = [
        context.Process(target=_process_worker, args=(url, ns, plan.threads_per_process, barrier))
        for _ in range(plan.processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    failed = [w.exitcode for w in workers if w.exitcode != 0]
    if failed:
        raise SystemExit(f"process stampede: workers exited with {failed}")
    client = redis.Redis.from_url(url)
    calls = int(client.get(f"{ns}:stampede:procs:calls") or 0)
    naive_calls = int(client.get(f"{ns}:stampede:naive-procs:calls") or 0)
    problems = [p.decode() for p in client.lrange(f"{ns}:stampede:procs:problems", 0, -1)]
    client.close()
    n = plan.processes * plan.threads_per_process
    name = f"stampede: {plan.processes} processes x {plan.threads_per_process} threads (spawn)"
    row = count_row(name, n, naive_calls, calls)
    return flagged([row], "; ".join(problems) or None)[0]


# -- report -------------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    headers = ("benchmark", "baseline", "perfkit", "ratio", "target", "result")
    cells = [
        (r.name, r.baseline, r.perfkit, "-" if r.ratio is None else f"{r.ratio:.2f}", r.target,
         r.verdict)
        for r in rows
    ]  # fmt: skip
    widths = [max(len(c[i]) for c in [headers, *cells]) for i in range(len(headers))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*headers))
    print("  ".join("-" * w for w in widths))
    for row, cell in zip(rows, cells, strict=True):
        print(line.format(*cell))
        if row.verdict == "skip":
            print(f"    ({row.detail['skipped']})")
        if "problem" in row.detail:
            print(f"    (!) {row.detail['problem']}")


def cleanup(url: str, ns: str) -> int:
    """Delete this run's keys (and only those)."""
    client = redis.Redis.from_url(url)
    removed = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{ns}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += client.unlink(*batch)
                batch.clear()
        if batch:
            removed += client.unlink(*batch)
    finally:
        client.close()
    return removed


SECTIONS = (
    "sync hits",
    "async hits",
    "invalidate_tags",
    "async stampede",
    "thread stampede",
    "process stampede",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="Redis to use (its DB number is replaced by 11)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, 10 000 tagged keys")
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run only this section (repeatable)"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    ns = f"perfkit-bench-{uuid.uuid4().hex[:10]}"
    started = time.perf_counter()
    with redis_server(args.redis_url, BENCH_DB) as url:
        client = redis.Redis.from_url(url)
        server = client.info("server")
        client.close()
        print(f"Redis {server.get('redis_version')} at {redacted_url(url)}, namespace {ns}")
        rows: list[Row] = []
        try:
            sections: list[tuple[str, Callable[[], list[Row]]]] = [
                ("sync hits", lambda: bench_hits_sync(url, ns, plan)),
                ("async hits", lambda: asyncio.run(bench_hits_async(url, ns, plan))),
                ("invalidate_tags", lambda: bench_invalidate(url, ns, plan)),
                ("async stampede", lambda: [asyncio.run(bench_stampede_async(url, ns, plan))]),
                ("thread stampede", lambda: [bench_stampede_threads(url, ns, plan)]),
                ("process stampede", lambda: [bench_stampede_processes(url, ns, plan)]),
            ]
            for title, section in sections:
                if args.only and title not in args.only:
                    continue
                at = time.perf_counter()
                rows += section()
                print(f"  {title}: {time.perf_counter() - at:.1f} s", file=sys.stderr)
        finally:
            removed = cleanup(url, ns)
            print(f"  removed this run's {removed} keys", file=sys.stderr)
        print()
        print_table(rows)
        elapsed = time.perf_counter() - started
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "benchmark": "cache",
                    "quick": args.quick,
                    "redis_url": redacted_url(url),
                    "redis_version": server.get("redis_version"),
                    "python": platform.python_version(),
                    "plan": asdict(plan),
                    "seconds": round(elapsed, 1),
                    "rows": [asdict(r) for r in rows],
                },
                indent=2,
            )
            + "\n"
        )
        print(f"\n{elapsed:.0f} s; results in {RESULTS}")
    return 0 if all(r.verdict != "MISS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
