"""What N+1 detection adds to a request that runs 20 statements (issue 27), paired.

    python benchmarks/bench_nplusone.py [--url URL] [--runs 3] [--rounds 30] [--batch 40] [--no-pin]

A WSGI request through perfkit's request middleware (``PerformanceMonitor.wsgi``) runs 20
statements on a ``TimedPool`` connection to a real PostgreSQL, in two shapes:

- ``distinct``: 20 statements of 20 shapes, so no finding (the common case);
- ``n+1``: one statement, then 19 of one shape: a finding in every request (the call
  site is taken, the finding recorded, the warning rate-limited).

Detection on (``threshold=10``, the default) and off (``threshold=0``, what
``N_PLUS_ONE_THRESHOLD=0`` sets) take turns in rounds of ``batch`` requests, the order
swapped every round. Each row is the median over ``--runs`` of the median ratio of
adjacent rounds (on / off), with the runs' spread in brackets; target <= 1.03; an A/A
row (off / off, the same code on both sides) shows what the harness reads where there is
no difference: its distance from 1 is the resolution of the rows above. Timed by
the wall clock and by this process's CPU time (``process_time``: where detection runs,
and steadier than the wall clock on a shared machine). The
client and the pool's server backend share one core where the OS allows it (see
bench_queries.py: it steadies the loopback round trip).

The round trips' noise is far larger than what detection costs, so the last rows take
PostgreSQL away: the same requests with the statements only recorded (as the timed
cursors record them), on and off paired by CPU time, give what detection adds per
request in microseconds (the median of adjacent-pair differences, the runs' spread in
brackets), and that as a share of the real request measured above (wall clock, off).
That share is a lower bound: the loop keeps detection's code and data in the CPU caches,
where in the real request they are cold after every round trip (about three times the
time per instruction here); ``instructions_nplusone.py`` counts what detection adds to
the real request in instructions, which the machine's load does not move.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_queries import pin_backends

from perfkit import Settings
from perfkit.metrics import PerformanceMonitor
from perfkit.queries import (
    NPlusOneDetector,
    QueryStats,
    TimedPool,
    set_n_plus_one_detector,
)

STATEMENTS = 20
DISTINCT = [f"SELECT %s::int AS c{i}" for i in range(STATEMENTS)]
REPEATED = ["SELECT %s::int AS head"] + ["SELECT %s::int AS item"] * (STATEMENTS - 1)
# Elapsed time (the request as a client sees it) and this process's CPU time (what
# detection adds runs here; steadier on a shared machine than the round trips).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
ON = NPlusOneDetector(threshold=10)
OFF = NPlusOneDetector(threshold=0)


Statements = Callable[[list[str]], None]


def on_postgres(pool: TimedPool) -> Statements:
    """Run the statements on one pooled connection."""

    def run(texts: list[str]) -> None:
        with pool.connection() as conn:
            for i, text in enumerate(texts):
                conn.execute(text, (i,))

    return run


def recorded_only(stats: QueryStats) -> Statements:
    """Only record the statements, as the timed cursors do (no PostgreSQL): what is left
    is perfkit's own work per request, detection's part of it included."""

    def run(texts: list[str]) -> None:
        for text in texts:
            stats.record(text, 5e-5)

    return run


def make_app(statements: Statements) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        statements(DISTINCT if environ["PATH_INFO"] == "/distinct" else REPEATED)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    monitor = PerformanceMonitor(settings=Settings())
    return monitor.wsgi(app, compress=False)


def requester(app: Callable[..., Iterable[bytes]], path: str, detector: NPlusOneDetector) -> Any:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.url_scheme": "http"}

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        pass

    def call() -> None:
        set_n_plus_one_detector(detector)
        body = app(dict(environ), start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    return call


def alternate(
    calls: dict[str, Callable[[], None]], rounds: int, batch: int, clock: Callable[[], float]
) -> dict[str, list[float]]:
    """Seconds per call of each contender by ``clock``, one sample per round after a
    warm-up round, the order swapped every round (``_common.interleave`` keeps two
    contenders in one order)."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for index in range(rounds + 1):
        for name in names if index % 2 else names[::-1]:
            call = calls[name]
            start = clock()
            for _ in range(batch):
                call()
            if index:
                samples[name].append((clock() - start) / batch)
    return samples


def paired(samples: dict[str, list[float]]) -> float:
    return statistics.median(
        on / off for on, off in zip(samples["on"], samples["off"], strict=True)
    )


def measure(
    app: Callable[..., Iterable[bytes]],
    shape: str,
    clock: str,
    args: argparse.Namespace,
    first: NPlusOneDetector = ON,
) -> tuple[list[float], list[float], list[float]]:
    """Per run: the paired ratio of ``first`` (detection on) over off, the median off time
    and the median difference of adjacent rounds (seconds per request). ``first=OFF`` is
    the A/A control: what the harness reads where there is no difference."""
    path = "/distinct" if shape == "distinct" else "/repeated"
    calls = {"on": requester(app, path, first), "off": requester(app, path, OFF)}
    ratios, off, added = [], [], []
    for _ in range(args.runs):
        samples = alternate(calls, args.rounds, args.batch, CLOCKS[clock])
        ratios.append(paired(samples))
        off.append(statistics.median(samples["off"]))
        pairs = zip(samples["on"], samples["off"], strict=True)
        added.append(statistics.median(on - off for on, off in pairs))
    return ratios, off, added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--url", default=default)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument(
        "--no-pin", action="store_true", help="leave the client and the backend unpinned"
    )
    args = parser.parse_args()
    request_time: dict[str, float] = {}
    with TimedPool(args.url, min_size=1, max_size=1, open=True) as pool:
        pool.wait()
        print("not pinned" if args.no_pin else pin_backends(pool))
        app = make_app(on_postgres(pool))
        cases = [(shape, clock, "on/off") for shape in ("distinct", "n+1") for clock in CLOCKS]
        cases += [("distinct", clock, "off/off") for clock in CLOCKS]  # the A/A control
        for shape, clock, pair in cases:
            first = ON if pair == "on/off" else OFF
            ratios, off, _ = measure(app, shape, clock, args, first)
            if clock == "wall" and pair == "on/off":
                request_time[shape] = statistics.median(off)
            print(
                f"{shape:8} {clock:4} {pair} {statistics.median(ratios):.4f} "
                f"[{min(ratios):.4f} .. {max(ratios):.4f}] over {args.runs} runs of "
                f"{args.rounds} paired rounds of {args.batch}; off "
                f"{statistics.median(off) * 1e6:.0f} µs per request; target <= 1.03"
            )
    # Detection's own CPU per request, measured without the round trips that drown it.
    bare = make_app(recorded_only(QueryStats()))
    bare_args = argparse.Namespace(runs=args.runs, rounds=args.rounds, batch=args.batch * 50)
    for shape in ("distinct", "n+1"):
        _, off, added = measure(bare, shape, "cpu", bare_args)
        share = statistics.median(added) / request_time[shape]
        print(
            f"{shape:8} detection adds {statistics.median(added) * 1e6:.1f} µs CPU per request "
            f"[{min(added) * 1e6:.1f} .. {max(added) * 1e6:.1f}] (perfkit's part without "
            f"PostgreSQL: {statistics.median(off) * 1e6:.1f} µs): {share:.2%} of the "
            f"{request_time[shape] * 1e6:.0f} µs request above; target <= 3 %"
        )


if __name__ == "__main__":
    main()
