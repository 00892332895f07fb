"""`perfkit bench`'s HTTP load client against maintained ones, measured side by side in one run.

The bench drives the marketplace from ``--concurrency`` load users (8), each drawing the
bench's request mix. This runs that same load (``perfkit_demo.bench.load``) with each client
in turn and prints the requests/s each drives, as a ratio to the bench's own client:

- ``handwritten``: the bench's client (``perfkit_demo.bench.connections``), one asyncio
  stream per user, HTTP/1.1 keep-alive;
- ``httpx``: one ``httpx.AsyncClient`` (HTTP/1.1 keep-alive pool of ``concurrency``);
- ``aiohttp``: one ``aiohttp.ClientSession`` on a ``TCPConnector(limit=concurrency)``.

The maintained clients send ``Accept-Encoding: identity`` as the bench's client does (it
sends none): with their default ``gzip, deflate`` the marketplace's compression middleware
would compress the larger answers, and the server's work would differ between contenders.

Two targets, each a uvicorn subprocess on loopback (``--target``):

- ``minimal``: a plain ASGI app answering every request with the same 1 KB JSON (what the
  client alone costs: the server does as little as it can);
- ``marketplace``: the bench's own server, caching on, warmed (the bench's fast phase,
  where the load generator's CPU counts most: it shares the 2 cores with the app, Redis
  and PostgreSQL). Embedded PostgreSQL and Valkey in a temporary directory unless
  ``--database-url`` / ``--redis-url`` are given (the data then goes to that database's
  ``search_path``, as ``perfkit bench`` does).

Each run: one warm-up round, then ``--rounds`` rounds of ``--seconds`` of load per client, the
clients taking turns in rotated order; the ratio of a client is the median over rounds of its
requests/s over the bench client's requests/s in the same round. ``--runs`` runs give the
spread. Client CPU is the load process's CPU time per request::

    python benchmarks/bench_load_client.py [--target minimal|marketplace|both] [--runs 3]
        [--rounds 8] [--seconds 2] [--concurrency 8] [--sf 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import msgspec
from _common import rotated_orders

from perfkit.embedded import free_port
from perfkit_demo.bench import Mix, Request, clear_namespace, connections, load, serving
from perfkit_demo.stack import Stack, ensure_data, stop_process, wait_for_http

JSON = {"Content-Type": "application/json"}
# What a product detail answer looks like in size (the marketplace's are 0.3-3 KB).
BODY = msgspec.json.encode({"id": 1, "name": "x" * 900, "price_cents": 1999, "stock": 10})


async def minimal_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Every HTTP request: 200 with :data:`BODY` (the request body read and dropped)."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


@contextlib.asynccontextmanager
async def httpx_users(port: int, concurrency: int) -> AsyncIterator[list[Request]]:
    """``concurrency`` users sharing one httpx.AsyncClient (keep-alive pool)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        limits=limits,
        timeout=60.0,
        headers={"Accept-Encoding": "identity"},
    ) as client:

        async def request(method: str, path: str, body: bytes | None) -> int:
            try:
                headers = None if body is None else JSON
                response = await client.request(method, path, content=body, headers=headers)
            except httpx.HTTPError:
                return 0
            return response.status_code

        yield [request] * concurrency


@contextlib.asynccontextmanager
async def aiohttp_users(port: int, concurrency: int) -> AsyncIterator[list[Request]]:
    """``concurrency`` users sharing one aiohttp.ClientSession (TCPConnector pool)."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{port}",
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=60.0),
        headers={"Accept-Encoding": "identity"},
    ) as session:

        async def request(method: str, path: str, body: bytes | None) -> int:
            try:
                headers = None if body is None else JSON
                async with session.request(method, path, data=body, headers=headers) as answer:
                    await answer.read()
                    return answer.status
            except (aiohttp.ClientError, TimeoutError):
                return 0

        yield [request] * concurrency


Users = Callable[[int, int], AbstractAsyncContextManager[list[Request]]]
CLIENTS: dict[str, Users] = {
    "handwritten": connections,
    "httpx": httpx_users,
    "aiohttp": aiohttp_users,
}


class Round(msgspec.Struct, frozen=True):
    """One client's round: requests/s answered 2xx, failed requests, client CPU per request."""

    rate: float
    errors: int
    cpu_us: float


def one_round(users: Users, port: int, mix: Mix, concurrency: int, seconds: float) -> Round:
    """``seconds`` of the bench's load through ``users`` (a fresh client, like a phase)."""

    async def go() -> tuple[list[Any], float, float]:
        async with users(port, concurrency) as requests:
            cpu, wall = time.process_time(), time.perf_counter()
            samples = await load(requests, mix, seconds, seed=0)  # same draws for each client
            return samples, time.perf_counter() - wall, time.process_time() - cpu

    samples, elapsed, cpu = asyncio.run(go())
    answered = sum(1 for _, _, status in samples if 200 <= status < 300)
    return Round(answered / elapsed, len(samples) - answered, cpu / max(len(samples), 1) * 1e6)


def one_run(port: int, mix: Mix, args: argparse.Namespace) -> dict[str, list[Round]]:
    """Rounds of every client in rotated order (the first, a warm-up, dropped)."""
    rounds: dict[str, list[Round]] = {name: [] for name in CLIENTS}
    for index, order in enumerate(rotated_orders(list(CLIENTS), args.rounds + 1)):
        for name in order:
            result = one_round(CLIENTS[name], port, mix, args.concurrency, args.seconds)
            if index:
                rounds[name].append(result)
    return rounds


def report(target: str, runs: list[dict[str, list[Round]]]) -> None:
    """Per run and client: median req/s, CPU µs per request, median paired ratio; then the
    spread of the ratios over the runs."""
    medians: dict[str, list[float]] = {name: [] for name in CLIENTS}
    for number, rounds in enumerate(runs, 1):
        base = rounds["handwritten"]
        for name, mine in rounds.items():
            ratio = statistics.median(m.rate / b.rate for m, b in zip(mine, base, strict=True))
            medians[name].append(ratio)
            errors = sum(r.errors for r in mine)
            print(
                f"{target} run {number} {name:>11}: "
                f"{statistics.median(r.rate for r in mine):7.0f} req/s, "
                f"client CPU {statistics.median(r.cpu_us for r in mine):5.0f} µs/request, "
                f"ratio {ratio:.3f}" + (f", {errors} failed" if errors else "")
            )
    for name, ratios in medians.items():
        if name != "handwritten":
            print(
                f"{target}: {name} / handwritten requests/s: median {statistics.median(ratios):.3f}"
                f" over {len(ratios)} runs (spread {min(ratios):.3f}-{max(ratios):.3f})"
            )


@contextlib.contextmanager
def minimal_server() -> Iterator[int]:
    """:func:`minimal_app` in uvicorn (httptools, as the bench serves the marketplace)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench_load_client:minimal_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    command += ["--no-access-log"]
    command += ["--lifespan", "off", "--app-dir", str(Path(__file__).parent)]
    server = subprocess.Popen(command)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", 30, server)
        yield port
    finally:
        stop_process(server)


@contextlib.contextmanager
def marketplace_server(args: argparse.Namespace, mix: Mix) -> Iterator[int]:
    """The bench's caching-on server, warmed (warmers, then a few seconds of load)."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-load-client-") as data_dir,
        Stack(
            database_url=args.database_url, redis_url=args.redis_url, data_dir=Path(data_dir)
        ) as stack,
    ):
        ensure_data(stack.database_url, args.sf, seed=42, progress=False)
        clear_namespace(stack.redis_url)
        try:
            with serving(stack, caching=True, l1=False) as (port, base):
                httpx.post(f"{base}/api/bench/warm", timeout=120).raise_for_status()
                one_round(connections, port, mix, args.concurrency, args.warmup)
                yield port
        finally:
            clear_namespace(stack.redis_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=["minimal", "marketplace", "both"], default="both")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=8, help="measured rounds per run")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per round")
    parser.add_argument("--concurrency", type=int, default=8, help="load users (bench: 8)")
    parser.add_argument("--sf", type=float, default=0.01, help="marketplace scale factor")
    parser.add_argument("--warmup", type=float, default=10.0, help="marketplace warm-up s")
    parser.add_argument("--database-url", help="default: embedded PostgreSQL")
    parser.add_argument("--redis-url", help="default: embedded Valkey")
    args = parser.parse_args()
    print(
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} "
        f"cores; {args.concurrency} users, {args.rounds} rounds of {args.seconds:g} s per run; "
        f"httpx {httpx.__version__}, aiohttp {aiohttp.__version__}"
    )
    mix = Mix(args.sf, 1.2)
    targets = ["minimal", "marketplace"] if args.target == "both" else [args.target]
    for target in targets:
        server = minimal_server() if target == "minimal" else marketplace_server(args, mix)
        with server as port:
            runs = [one_run(port, mix, args) for _ in range(args.runs)]
        report(target, runs)
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
