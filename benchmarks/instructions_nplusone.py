"""CPU instructions that N+1 detection adds to a request of 20 statements (issue 27).

The wall-clock and CPU-time ratios of ``bench_nplusone.py`` move with the machine's load;
the client's instruction count does not. Each case (the request shapes of
bench_nplusone.py, detection on and off) runs under ``valgrind --tool=callgrind`` twice,
with a short and a long loop of requests; the difference over the extra requests is the
cost of one request in the client process (the middleware, perfkit, psycopg, the
interpreter; not the server, not the kernel).

    python benchmarks/instructions_nplusone.py [--url postgresql://...] [--short 40] [--long 240]

It needs valgrind, and takes a few minutes (callgrind runs the interpreter ~50x slower).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

WARM_UP = 20  # requests before the counted ones (fingerprints cached, statements prepared)


def child(detection: str, shape: str, url: str, loops: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_nplusone import OFF, ON, make_app, requester

    from perfkit.queries import TimedPool

    with TimedPool(url, min_size=1, max_size=1, open=True) as pool:
        pool.wait()
        path = "/distinct" if shape == "distinct" else "/repeated"
        call = requester(make_app(pool), path, ON if detection == "on" else OFF)
        for _ in range(WARM_UP + loops):
            call()


def instructions(detection: str, shape: str, url: str, loops: int) -> int:
    """Instructions the client process ran for ``loops`` requests (plus start-up)."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--child", detection, shape, str(loops), "--url", url]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--url", default=default)
    parser.add_argument("--short", type=int, default=40)
    parser.add_argument("--long", type=int, default=240)
    parser.add_argument("--child", nargs=3, metavar=("DETECTION", "SHAPE", "LOOPS"))
    args = parser.parse_args()
    if args.child:
        detection, shape, loops = args.child
        child(detection, shape, args.url, int(loops))
        return
    cases = [(detection, shape) for shape in ("distinct", "n+1") for detection in ("off", "on")]
    runs = [(d, s, loops) for d, s in cases for loops in (args.short, args.long)]
    with ThreadPoolExecutor(max_workers=2) as executor:  # callgrind is single-threaded
        found = executor.map(lambda run: instructions(run[0], run[1], args.url, run[2]), runs)
        counts = dict(zip(runs, found, strict=True))
    extra = args.long - args.short
    per = {
        case: (counts[(*case, args.long)] - counts[(*case, args.short)]) / extra for case in cases
    }
    for shape in ("distinct", "n+1"):
        off, on = per["off", shape], per["on", shape]
        print(
            f"{shape:8} request of 20 statements: off {off:,.0f}, on {on:,.0f} instructions "
            f"per request: {on - off:+,.0f} ({on / off:.4f}x); target <= 1.03"
        )


if __name__ == "__main__":
    main()
