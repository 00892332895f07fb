"""``perfkit bench``: the seed guide's Before/After table, measured in one run.

The marketplace is served twice on the same data by a uvicorn subprocess: first with
perfkit's caching off (every read runs its query), then on (``cached_query`` with tags,
warmers run first); with ``--stale-ttl``, a third time with caching on and that stale window
on every read. After each phase's measured load, the same client loads a static route of the
same server (no cache, no SQL): the HTTP floor the cached numbers stand on. Each phase gets
a warm-up, then ``duration`` seconds of load from ``concurrency`` concurrent HTTP clients
drawing requests from one Zipf-distributed mix (popular products, pages, words, users and
sellers come up far more often than the rest; about 0.2 % of requests are stock or price
updates, which invalidate their tags). The server reports its cache hits, statements and
pool usage for the measured window only.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import random
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from perfkit._histogram import Histogram, log_bounds
from perfkit.embedded import free_port
from perfkit.settings import Settings
from perfkit_demo.stack import (
    Stack,
    ensure_data,
    marketplace_module,
    say,
    sigterm_as_interrupt,
    stop_process,
    wait_for_http,
)

__all__ = [
    "HEAVY",
    "STATIC_PATH",
    "Mix",
    "PhaseResult",
    "Request",
    "clear_namespace",
    "connections",
    "load",
    "run_bench",
    "serving",
]

NAMESPACE = "perfkit-bench"
# Endpoints whose queries aggregate many rows: the ones the seed's table is about.
HEAVY = (
    "category_leaderboard",
    "top_sellers",
    "best_sellers",
    "sales_summary",
    "seller_dashboard",
    "product_analytics",
)
# name -> weight in the request mix: about 2 requests in 1000 change a product's stock
# (invalidating its detail and analytics), 2 in 10 000 its price (invalidating also the
# listing pages that show it and the price-filtered search results).
WEIGHTS: dict[str, float] = {
    "product": 26.0,
    "listing": 12.0,
    "search": 12.0,
    "popular": 5.0,
    "categories": 5.0,
    "user_orders": 4.0,
    "seller_dashboard": 6.0,
    "product_analytics": 6.0,
    "category_leaderboard": 5.0,
    "top_sellers": 5.0,
    "best_sellers": 5.0,
    "sales_summary": 5.0,
    "update_stock": 0.2,
    "update_price": 0.02,
}
TARGETS = {"heavy_p50_ratio": 20.0, "cache_hit_rate": 0.95, "slow_query_pct": 1.0}
# With caching on, the warm-up lasts until this many requests were answered (--warmup-requests),
# but never longer than this many seconds.
WARMUP_REQUESTS = 50_000
WARMUP_REQUESTS_MAX_S = 120.0
# The floor: a route of the same server that answers a fixed JSON (bench_endpoints only),
# loaded for this share of --duration (at least 1 s) after each phase's measured load.
STATIC_PATH = "/api/bench/static"
FLOOR_SHARE = 1 / 3


class Zipf:
    """Ranks 1..n drawn with probability proportional to 1 / rank**s."""

    def __init__(self, n: int, s: float) -> None:
        self.cumulative = list(itertools.accumulate(1.0 / (r**s) for r in range(1, n + 1)))

    def draw(self, rng: random.Random) -> int:
        """A rank from 1 to n."""
        return bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1]) + 1


class Mix:
    """The bench's requests: an endpoint by :data:`WEIGHTS`, its arguments by Zipf."""

    def __init__(self, sf: float, s: float) -> None:
        datagen = marketplace_module("datagen")
        sizes = datagen.sizes_for(sf)
        self.words: tuple[str, ...] = datagen.SEARCH_WORDS
        self.products = Zipf(sizes.products, s)
        self.users = Zipf(sizes.users, s)
        self.sellers = Zipf(sizes.sellers, s)
        self.pages = Zipf(50, s)
        self.categories = Zipf(len(datagen.CATEGORIES), s)
        self.word = Zipf(len(self.words), s)
        self.names = list(WEIGHTS)
        self.cumulative = list(itertools.accumulate(WEIGHTS.values()))

    def draw(self, rng: random.Random) -> tuple[str, str, str, dict[str, int] | None]:
        """(endpoint name, method, path, JSON body)."""
        name = self.names[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]
        if name == "product":
            return name, "GET", f"/api/products/{self.products.draw(rng)}", None
        if name == "listing":
            page = self.pages.draw(rng)
            if rng.random() < 0.5:
                return name, "GET", f"/api/products?page={page}", None
            category = self.categories.draw(rng)
            return name, "GET", f"/api/products?category_id={category}&page={page}", None
        if name == "search":
            word = self.words[self.word.draw(rng) - 1]
            if rng.random() < 0.3:
                return name, "GET", f"/api/search?q={word}&max_price=5000", None
            return name, "GET", f"/api/search?q={word}", None
        if name == "user_orders":
            return name, "GET", f"/api/users/{self.users.draw(rng)}/orders", None
        if name == "seller_dashboard":
            return name, "GET", f"/api/sellers/{self.sellers.draw(rng)}/dashboard", None
        if name == "product_analytics":
            return name, "GET", f"/api/products/{self.products.draw(rng)}/analytics", None
        if name == "update_stock":
            body = {"stock": rng.randint(10, 500)}
            return name, "PATCH", f"/api/products/{self.products.draw(rng)}", body
        if name == "update_price":
            body = {"price_cents": rng.randint(199, 20_000)}
            return name, "PATCH", f"/api/products/{self.products.draw(rng)}", body
        return name, "GET", _FIXED_PATHS[name], None


class StaticMix:
    """The floor's requests: every one to :data:`STATIC_PATH`."""

    def draw(self, rng: random.Random) -> tuple[str, str, str, dict[str, int] | None]:
        """(endpoint name, method, path, JSON body)."""
        return "static", "GET", STATIC_PATH, None


_FIXED_PATHS = {
    "popular": "/api/products/popular",
    "categories": "/api/categories",
    "category_leaderboard": "/api/leaderboards/categories",
    "top_sellers": "/api/leaderboards/sellers",
    "best_sellers": "/api/leaderboards/products",
    "sales_summary": "/api/analytics/summary",
}


# Request times from 10 µs to ~22 min, 16 buckets per doubling: percentiles to 4.4 %.
_LATENCY_BOUNDS = log_bounds(10e-6, 16, 27)


class Latency(msgspec.Struct, frozen=True, kw_only=True):
    """Latency of a set of requests, in milliseconds."""

    requests: int
    avg_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        """Percentiles of ``seconds`` from perfkit's histogram (to within 4.4 %)."""
        histogram = Histogram(_LATENCY_BOUNDS)
        for value in seconds:
            histogram.add(value)

        def ms(value: float) -> float:
            return round(value * 1000, 3)

        return cls(
            requests=histogram.count,
            avg_ms=ms(histogram.mean()),
            p50_ms=ms(histogram.quantile(0.50)),
            p95_ms=ms(histogram.quantile(0.95)),
            p99_ms=ms(histogram.quantile(0.99)),
        )


class PhaseResult(msgspec.Struct, frozen=True, kw_only=True):
    """One phase (caching off, on, or on with a stale window): client-side latency,
    server-side stats, and the HTTP floor (the static route) measured right after."""

    caching: bool
    stale_ttl: float | None
    duration_s: float
    latency: Latency
    throughput_rps: float
    errors: int
    by_endpoint: dict[str, Latency]
    heavy: Latency
    cache_hit_rate: float | None
    cache_hits: int
    cache_misses: int
    # Served from a stale window while one refresh ran (stale phase), and those refreshes.
    stale_hits: int
    background_refreshes: int
    # Per request, unlike cache_hit_rate (per cache lookup; a cached listing page is one
    # lookup of its ids plus one per product summary): the share of GET reads that ran
    # no statement themselves.
    reads_without_sql: float | None
    queries: int
    slow_queries: int
    slow_query_pct: float
    pool_max: int
    pool_utilization_pct: float
    floor: Latency
    floor_throughput_rps: float


Sample = tuple[str, float, int]


class _Connection:
    """One keep-alive HTTP/1.1 connection: the lightest client asyncio allows, so that the
    load generator takes as little as it can of the CPU it shares with the server.

    Measured by ``benchmarks/bench_load_client.py`` (docs/bench.md): this client costs
    60-135 µs of CPU per request; aiohttp's ``ClientSession`` 240-350 µs and httpx's
    ``AsyncClient`` 1.5-2.4 ms, which drive 0.84-0.87 and 0.25-0.26 of its requests/s against the
    cached marketplace. It reads what the marketplace sends (``Content-Length`` or chunked
    bodies, keep-alive or ``Connection: close``) and nothing else (no TLS, redirects or
    compression: it asks for none)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None) -> int:
        """Send one request and read the whole response; its status (0: failed)."""
        try:
            if self.reader is None or self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            if body is not None:
                head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            self.writer.write(head.encode() + b"\r\n" + (body or b""))
            block = await self.reader.readuntil(b"\r\n\r\n")
            status = int(block[9:12])
            length = 0
            close = chunked = False
            for line in block.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
                elif name == b"transfer-encoding" and value.strip().lower() == b"chunked":
                    chunked = True
            if chunked:
                await self._read_chunks(self.reader)
            else:
                await self.reader.readexactly(length)
            if close:
                self.close()
            return status
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.close()
            return 0

    @staticmethod
    async def _read_chunks(reader: asyncio.StreamReader) -> None:
        """Read a chunked body to its end (chunk extensions and trailers skipped)."""
        while size := int((await reader.readuntil(b"\r\n")).partition(b";")[0], 16):
            await reader.readexactly(size + 2)  # the chunk and its CRLF
        while await reader.readuntil(b"\r\n") != b"\r\n":
            pass  # a trailer field

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


Request = Callable[[str, str, bytes | None], Awaitable[int]]
"""One load user's way to send a request (method, path, JSON body) and read the whole
response; returns its status (0: failed, the next request reconnects)."""


@contextlib.asynccontextmanager
async def connections(port: int, concurrency: int) -> AsyncIterator[list[Request]]:
    """``concurrency`` load users on 127.0.0.1:``port``, each with its own keep-alive
    connection, closed on exit."""
    users = [_Connection("127.0.0.1", port) for _ in range(concurrency)]
    try:
        yield [user.request for user in users]
    finally:
        for user in users:
            user.close()


async def load(
    users: Sequence[Request],
    mix: Mix | StaticMix,
    seconds: float,
    seed: int,
    *,
    at_least: int = 0,
) -> list[Sample]:
    """``seconds`` of load from ``users``, concurrently; and then more, until ``at_least``
    requests were answered (but never past :data:`WARMUP_REQUESTS_MAX_S`)."""
    samples: list[Sample] = []
    started = time.perf_counter()
    deadline = started + seconds
    limit = started + max(seconds, WARMUP_REQUESTS_MAX_S)
    encode = msgspec.json.encode

    def going() -> bool:
        now = time.perf_counter()
        return now < deadline or (len(samples) < at_least and now < limit)

    async def user(number: int, request: Request) -> None:
        rng = random.Random(seed * 1000 + number)
        while going():
            name, method, path, body = mix.draw(rng)
            payload = None if body is None else encode(body)
            started = time.perf_counter()
            status = await request(method, path, payload)
            samples.append((name, time.perf_counter() - started, status))

    await asyncio.gather(*(user(n, request) for n, request in enumerate(users)))
    return samples


async def _load(
    port: int,
    mix: Mix | StaticMix,
    concurrency: int,
    seconds: float,
    seed: int,
    *,
    at_least: int = 0,
) -> list[Sample]:
    async with connections(port, concurrency) as users:
        return await load(users, mix, seconds, seed, at_least=at_least)


@contextlib.contextmanager
def serving(
    stack: Stack,
    *,
    caching: bool,
    l1: bool,
    stale_ttl: float | None = None,
    heavy_ttl: float | None = None,
) -> Iterator[tuple[int, str]]:
    """The marketplace in a uvicorn subprocess, as each phase serves it: (port, base URL)
    once it answers; stopped on exit. ``stale_ttl``, ``heavy_ttl``: the app's
    MARKETPLACE_STALE_TTL and MARKETPLACE_HEAVY_TTL (unset when None)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ttls = {
        name: f"{value:g}"
        for name, value in (
            ("MARKETPLACE_STALE_TTL", stale_ttl),
            ("MARKETPLACE_HEAVY_TTL", heavy_ttl),
        )
        if value is not None
    }
    env = stack.environment(
        **ttls,
        MARKETPLACE_CACHING="1" if caching else "0",
        MARKETPLACE_L1="1" if l1 else "0",
        MARKETPLACE_BENCH_ENDPOINTS="1",
        CACHE_NAMESPACE=NAMESPACE,
        CACHE_WARMUP_DELAY="3600",  # the bench warms explicitly, before the warm-up load
        PERFKIT_ADMIN_TOKEN=secrets.token_urlsafe(24),  # mounted like the demo's; unused
    )
    command = [sys.executable, "-m", "uvicorn", "--factory", "marketplace.app:app_from_env"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    command += ["--no-access-log"]
    server = stack.spawn("bench server", command, env)
    try:
        wait_for_http(f"{base}/healthz", 60, server)
        yield port, base
    finally:
        stop_process(server)


def _phase(
    stack: Stack,
    args: argparse.Namespace,
    mix: Mix,
    *,
    caching: bool,
    settings: Settings,
    stale_ttl: float | None = None,
) -> PhaseResult:
    import httpx

    heavy_ttl = args.heavy_ttl if caching else None
    with serving(stack, caching=caching, l1=args.l1, stale_ttl=stale_ttl, heavy_ttl=heavy_ttl) as (
        port,
        base,
    ):
        label = "on " if caching else "off"
        if stale_ttl is not None:
            label = f"on (stale window {stale_ttl:g} s)"
        if caching:
            warmed = httpx.post(f"{base}/api/bench/warm", timeout=120).json()
            say(f"caching {label}: warmers ran: {', '.join(w['name'] for w in warmed)}")
        # The cache's state depends on the requests it has seen: with a fixed time only, a
        # slower machine would start measuring a colder cache (the caching-off phase has
        # nothing that warms per request).
        at_least = args.warmup_requests if caching else 0
        floor = f" and >= {at_least} requests" if at_least else ""
        say(f"caching {label}: warm-up {args.warmup:g} s{floor} ...")
        warm = asyncio.run(
            _load(port, mix, args.concurrency, args.warmup, args.seed + 1, at_least=at_least)
        )
        say(f"caching {label}: warm-up done, {len(warm)} requests")
        httpx.post(f"{base}/api/bench/reset", timeout=10).raise_for_status()
        say(f"caching {label}: measuring {args.duration:g} s ...")
        started = time.perf_counter()
        samples = asyncio.run(_load(port, mix, args.concurrency, args.duration, args.seed))
        elapsed = time.perf_counter() - started
        stats = httpx.get(f"{base}/api/bench/stats", timeout=10).json()
        seconds = max(1.0, args.duration * FLOOR_SHARE)
        say(f"caching {label}: HTTP floor, {seconds:g} s on {STATIC_PATH} ...")
        started = time.perf_counter()
        static = asyncio.run(_load(port, StaticMix(), args.concurrency, seconds, args.seed))
        floor_elapsed = time.perf_counter() - started
    result = _summarize(samples, elapsed, stats, caching, stale_ttl)
    return msgspec.structs.replace(
        result,
        floor=Latency.of([sample[1] for sample in static]),
        floor_throughput_rps=round(len(static) / floor_elapsed, 1),
    )


def _summarize(
    samples: list[Sample],
    elapsed: float,
    stats: dict[str, Any],
    caching: bool,
    stale_ttl: float | None = None,
) -> PhaseResult:
    by_name: dict[str, list[float]] = {}
    for name, seconds, _ in samples:
        by_name.setdefault(name, []).append(seconds)
    lookups = stats["cache_hits"] + stats["cache_misses"]
    return PhaseResult(
        caching=caching,
        stale_ttl=stale_ttl,
        duration_s=round(elapsed, 3),
        latency=Latency.of([s for _, s, _ in samples]),
        throughput_rps=round(len(samples) / elapsed, 1),
        errors=sum(1 for _, _, status in samples if status == 0 or status >= 500),
        by_endpoint={name: Latency.of(by_name[name]) for name in WEIGHTS if name in by_name},
        heavy=Latency.of([s for name, s, _ in samples if name in HEAVY]),
        cache_hit_rate=round(stats["cache_hit_rate"], 4) if lookups else None,
        cache_hits=stats["cache_hits"],
        cache_misses=stats["cache_misses"],
        stale_hits=stats["stale_hits"],
        background_refreshes=stats["background_refreshes"],
        reads_without_sql=(
            round(stats["reads_without_sql"] / stats["reads"], 4) if stats.get("reads") else None
        ),
        queries=stats["queries"],
        slow_queries=stats["slow_queries"],
        slow_query_pct=round(stats["slow_query_pct"], 3),
        pool_max=stats["pool_max"],
        pool_utilization_pct=round(
            100 * stats["pool_usage_ms"] / (elapsed * 1000 * stats["pool_max"]), 2
        ),
        floor=Latency(requests=0, avg_ms=0.0, p50_ms=0.0, p95_ms=0.0, p99_ms=0.0),
        floor_throughput_rps=0.0,
    )


def _ratio(before: float, after: float) -> float | None:
    return round(before / after, 1) if after > 0 else None


def _ratios(off: PhaseResult, on: PhaseResult) -> dict[str, Any]:
    per_endpoint = {
        name: _ratio(off.by_endpoint[name].p50_ms, on.by_endpoint[name].p50_ms)
        for name in HEAVY
        if name in off.by_endpoint and name in on.by_endpoint
    }
    known = [r for r in per_endpoint.values() if r is not None]
    return {
        "avg": _ratio(off.latency.avg_ms, on.latency.avg_ms),
        "p50": _ratio(off.latency.p50_ms, on.latency.p50_ms),
        "p95": _ratio(off.latency.p95_ms, on.latency.p95_ms),
        "p99": _ratio(off.latency.p99_ms, on.latency.p99_ms),
        "throughput": _ratio(on.throughput_rps, off.throughput_rps),
        "heavy_p50": _ratio(off.heavy.p50_ms, on.heavy.p50_ms),
        "heavy_p50_min": min(known) if known else None,
        "heavy_p50_by_endpoint": per_endpoint,
    }


def _table(
    off: PhaseResult, on: PhaseResult, ratios: dict[str, Any], stale: PhaseResult | None = None
) -> str:
    """The printed table: caching off, on, the ratio; and caching on with a stale window
    (``stale``) when the run measured one. The HTTP floor rows read each phase's static
    route: what the stack costs without the cache."""

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    def times(value: float | None) -> str:
        return "-" if value is None else f"{value:g}x"

    def quantile(q: str) -> Callable[[PhaseResult], str]:
        return lambda p: f"{getattr(p.latency, f'{q}_ms'):.1f}"

    def endpoint_p50(name: str) -> Callable[[PhaseResult], str]:
        return lambda p: f"{p.by_endpoint[name].p50_ms:.1f}"

    def stale_hits(p: PhaseResult) -> str:
        return f"{p.stale_hits} ({p.background_refreshes})" if p.caching else "-"

    phases = [off, on] if stale is None else [off, on, stale]
    shown: list[tuple[str, Callable[[PhaseResult], str], str]] = [
        (f"{q} latency (ms)", quantile(q), times(ratios[q])) for q in ("avg", "p50", "p95", "p99")
    ]
    shown += [
        ("heavy endpoints p50 (ms)", lambda p: f"{p.heavy.p50_ms:.1f}", times(ratios["heavy_p50"])),
        ("heavy endpoints p99 (ms)", lambda p: f"{p.heavy.p99_ms:.1f}", ""),
        ("throughput (req/s)", lambda p: f"{p.throughput_rps:.0f}", times(ratios["throughput"])),
        ("HTTP floor p50 / p99 (ms)", lambda p: f"{p.floor.p50_ms:.1f} / {p.floor.p99_ms:.1f}", ""),
        ("HTTP floor throughput (req/s)", lambda p: f"{p.floor_throughput_rps:.0f}", ""),
        ("requests (errors)", lambda p: f"{p.latency.requests} ({p.errors})", ""),
        ("cache hit rate (per lookup)", lambda p: pct(p.cache_hit_rate), ""),
        ("reads served without SQL", lambda p: pct(p.reads_without_sql), ""),
        ("stale hits (background refreshes)", stale_hits, ""),
        ("slow queries", lambda p: f"{p.slow_query_pct:.1f}% of {p.queries}", ""),
        ("pool utilisation", lambda p: f"{p.pool_utilization_pct:.0f}% of {p.pool_max}", ""),
    ]
    for name, ratio in ratios["heavy_p50_by_endpoint"].items():
        shown.append((f"  p50 {name} (ms)", endpoint_p50(name), times(ratio)))
    rows = [(label, *(show(p) for p in phases), ratio) for label, show, ratio in shown]
    headers: tuple[str, ...] = ("", "caching off (before)", "caching on (after)")
    if stale is not None:
        headers += (f"caching on + stale window {stale.stale_ttl:g} s",)
    headers += ("ratio (off / on)",)
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _verdicts(on: PhaseResult, ratios: dict[str, Any]) -> dict[str, dict[str, Any]]:
    heavy = ratios["heavy_p50"]
    by_endpoint = ratios["heavy_p50_by_endpoint"]
    lowest = min(by_endpoint, key=lambda n: by_endpoint[n] or 0.0) if by_endpoint else None
    hit = on.cache_hit_rate
    return {
        "heavy_p50_ratio": {
            "target": f">= {TARGETS['heavy_p50_ratio']:g}x (p50 of the heavy endpoints' requests)",
            "measured": heavy,
            "met": heavy is not None and heavy >= TARGETS["heavy_p50_ratio"],
            # Per endpoint, for context: the per-entity aggregates (a seller's dashboard, a
            # product's analytics) run indexed queries of a few ms, so their ratio is
            # bounded by the cached request's own HTTP round trip.
            "lowest_endpoint": lowest,
            "lowest_endpoint_ratio": None if lowest is None else by_endpoint[lowest],
        },
        "cache_hit_rate": {
            "target": f">= {TARGETS['cache_hit_rate']:.0%} (per cache lookup)",
            "measured": hit,
            "met": hit is not None and hit >= TARGETS["cache_hit_rate"],
            "reads_without_sql": on.reads_without_sql,  # the same per request, for context
        },
        "slow_query_pct": {
            "target": f"< {TARGETS['slow_query_pct']:g}%",
            "measured": on.slow_query_pct,
            "met": on.slow_query_pct < TARGETS["slow_query_pct"],
        },
    }


def _chart(path: Path, off: PhaseResult, on: PhaseResult, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in off.by_endpoint if n in on.by_endpoint]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5), width_ratios=[3, 1])
    width = 0.4

    def bars(axis: Any, values: list[tuple[float, float]], labels: list[str]) -> None:
        places = range(len(labels))
        axis.bar([p - width / 2 for p in places], [v[0] for v in values], width, label="off")
        axis.bar([p + width / 2 for p in places], [v[1] for v in values], width, label="on")
        axis.set_yscale("log")
        axis.set_xticks(list(places), labels, rotation=35, ha="right")
        axis.legend(title="caching")

    bars(left, [(off.by_endpoint[n].p50_ms, on.by_endpoint[n].p50_ms) for n in names], names)
    left.set_ylabel("p50 latency (ms, log scale)")
    left.set_title("p50 latency by endpoint")
    quantiles = ["avg", "p50", "p95", "p99"]
    values = [(getattr(off.latency, f"{q}_ms"), getattr(on.latency, f"{q}_ms")) for q in quantiles]
    bars(right, values, quantiles)
    right.set_title("all requests (ms)")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run_bench(args: argparse.Namespace) -> int:
    """Run both phases, print the table, write the JSON (and the chart)."""
    settings = Settings.from_env()
    if args.quick:
        args.sf = 0.01 if args.sf is None else args.sf
        args.duration = 3.0 if args.duration is None else args.duration
        args.warmup = 1.0 if args.warmup is None else args.warmup
        args.warmup_requests = 0 if args.warmup_requests is None else args.warmup_requests
    args.sf = 0.1 if args.sf is None else args.sf
    args.duration = 30.0 if args.duration is None else args.duration
    args.warmup = 10.0 if args.warmup is None else args.warmup
    if args.warmup_requests is None:
        args.warmup_requests = WARMUP_REQUESTS
    with (
        sigterm_as_interrupt(),
        Stack(
            database_url=args.database_url,
            redis_url=args.redis_url,
            data_dir=Path(args.data_dir) if args.data_dir else None,
        ) as stack,
    ):
        meta = ensure_data(stack.database_url, args.sf, args.seed)
        mix = Mix(args.sf, args.zipf)
        clear_namespace(stack.redis_url)
        try:
            off = _phase(stack, args, mix, caching=False, settings=settings)
            on = _phase(stack, args, mix, caching=True, settings=settings)
            stale = None
            if args.stale_ttl is not None:
                # From the same empty cache as the caching-on phase: only the window differs.
                clear_namespace(stack.redis_url)
                stale = _phase(
                    stack, args, mix, caching=True, settings=settings, stale_ttl=args.stale_ttl
                )
        finally:
            clear_namespace(stack.redis_url)
    ratios = _ratios(off, on)
    verdicts = _verdicts(on, ratios)
    title = (
        f"perfkit bench: SF {args.sf:g}, {args.concurrency} concurrent, "
        f"{args.duration:g} s per phase after {args.warmup:g} s warm-up"
        + (f" (>= {args.warmup_requests} requests cached)" if args.warmup_requests else "")
        + f", Zipf {args.zipf:g}"
        + (", L1 near cache" if args.l1 else "")
        + (f", heavy reads' TTL {args.heavy_ttl:g} s" if args.heavy_ttl is not None else "")
    )
    say("")
    say(title)
    say(_table(off, on, ratios, stale))
    say("")
    for name, verdict in verdicts.items():
        mark = "met" if verdict["met"] else "NOT met"
        say(f"target {name} {verdict['target']}: measured {verdict['measured']} -> {mark}")
        if verdict.get("lowest_endpoint") is not None:
            lowest, ratio = verdict["lowest_endpoint"], verdict["lowest_endpoint_ratio"]
            say(f"  (for context: the lowest ratio of one heavy endpoint is {lowest}'s, {ratio}x)")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "title": title,
        "config": {
            "sf": args.sf,
            "seed": args.seed,
            "data_anchor": meta.get("anchor"),
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "warmup_requests": args.warmup_requests,
            "concurrency": args.concurrency,
            "zipf": args.zipf,
            "l1": args.l1,
            "stale_ttl": args.stale_ttl,
            "heavy_ttl": args.heavy_ttl,
            "floor_path": STATIC_PATH,
            "weights": WEIGHTS,
            "heavy_endpoints": HEAVY,
            "servers": "embedded" if not (args.database_url or settings.database_url) else "given",
        },
        "before": off,
        "after": on,
        "after_stale": stale,
        "ratios": ratios,
        "targets": verdicts,
    }
    output.write_bytes(msgspec.json.format(msgspec.json.encode(document)) + b"\n")
    say(f"wrote {output}")
    if not args.no_chart:
        chart = output.with_suffix(".png")
        _chart(chart, off, on, title)
        say(f"wrote {chart}")
    return 0


def clear_namespace(redis_url: str) -> None:
    from perfkit.cache import RedisService

    with RedisService(redis_url, namespace=NAMESPACE) as cache:
        cache.clear()
