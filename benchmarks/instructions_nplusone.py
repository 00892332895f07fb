"""CPU instructions N+1 detection adds to a real request of 20 statements (issue 27).

``bench_nplusone.py`` times the request on and off; its rows without PostgreSQL time
detection in a tight loop, where its code and data stay in the CPU caches. On the real
request every statement waits for a round trip, and the PostgreSQL backend (pinned to the
client's core) and the kernel run in between: detection's code runs cold there, and costs
more time per instruction than the tight loop shows. The instructions do not depend on
that (nor on the machine's load): this counts the client process's instructions per
request under valgrind's callgrind, detection on and off, on the real path (the same WSGI
app and ``TimedPool`` as the benchmark) and without PostgreSQL, by the difference between
a short and a long run. Detection's share of the real request's instructions is what it
adds to the client's CPU time there.

    python benchmarks/instructions_nplusone.py [--url postgresql://...] [--short 100] [--long 400]

It needs valgrind, and takes several minutes (callgrind runs the interpreter ~50x slower).
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_nplusone as bench
from instructions_queries import callgrind_instructions

from perfkit.queries import QueryStats, TimedPool

WARM_UP = 30  # requests before the counted ones (psycopg prepares after 5 runs)
PATHS = {"distinct": "/distinct", "n+1": "/repeated"}


def child(url: str, detection: str, where: str, shape: str, loops: int) -> None:
    detector = bench.ON if detection == "on" else bench.OFF
    if where == "bare":
        call = bench.requester(
            bench.make_app(bench.recorded_only(QueryStats())), PATHS[shape], detector
        )
        for _ in range(WARM_UP + loops):
            call()
        return
    with TimedPool(url, min_size=1, max_size=1, open=True) as pool:
        pool.wait()
        call = bench.requester(bench.make_app(bench.on_postgres(pool)), PATHS[shape], detector)
        for _ in range(WARM_UP + loops):
            call()


def instructions(url: str, case: tuple[str, str, str], loops: int) -> int:
    """Instructions the client process ran for ``loops`` requests (plus start-up)."""
    return callgrind_instructions([__file__, "--url", url, "--child", *case, str(loops)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--url", default=default)
    parser.add_argument("--short", type=int, default=100)
    parser.add_argument("--long", type=int, default=400)
    parser.add_argument("--child", nargs=4, metavar=("DETECTION", "WHERE", "SHAPE", "LOOPS"))
    args = parser.parse_args()
    if args.child:
        detection, where, shape, loops = args.child
        child(args.url, detection, where, shape, int(loops))
        return
    cases = [(d, w, s) for s in PATHS for w in ("real", "bare") for d in ("off", "on")]
    runs = [(case, loops) for case in cases for loops in (args.short, args.long)]
    with ThreadPoolExecutor(max_workers=2) as executor:  # callgrind is single-threaded
        counts = dict(
            zip(runs, executor.map(lambda r: instructions(args.url, *r), runs), strict=True)
        )
    extra = args.long - args.short
    per = {case: (counts[case, args.long] - counts[case, args.short]) / extra for case in cases}
    for shape in PATHS:
        for where in ("real", "bare"):
            off, on = per["off", where, shape], per["on", where, shape]
            print(
                f"{shape:8} {where:4} request: off {off:,.0f}, on {on:,.0f} instructions; "
                f"detection {on - off:+,.0f} ({on / off:.4f}x)"
            )


if __name__ == "__main__":
    main()
