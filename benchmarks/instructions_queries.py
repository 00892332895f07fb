"""CPU instructions per ``connection()`` + ``SELECT 1``: TimedPool against raw psycopg_pool.

The wall-clock ratio of ``bench_queries.py`` moves with the machine's load; the client's
instruction count does not. Each case runs under ``valgrind --tool=callgrind`` twice, with
a short and a long loop; the difference over the extra statements is the cost of one
statement in the client process (psycopg, psycopg_pool, perfkit, the interpreter; not the
server, not the kernel).

    python benchmarks/instructions_queries.py [--url postgresql://...] [--short 200] [--long 1200]

It needs valgrind, and takes a few minutes (callgrind runs the interpreter ~50x slower).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

WARM_UP = 50  # statements before the counted ones (psycopg prepares SELECT 1 after 5)


def sync_child(kind: str, url: str, loops: int) -> None:
    from psycopg_pool import ConnectionPool

    from perfkit.queries import TimedPool

    pool_class: Any = ConnectionPool if kind == "raw" else TimedPool
    with pool_class(url, min_size=1, max_size=1, open=True) as pool:
        pool.wait()
        for _ in range(WARM_UP + loops):
            with pool.connection() as conn:
                conn.execute("SELECT 1")


async def async_child(kind: str, url: str, loops: int) -> None:
    from psycopg_pool import AsyncConnectionPool

    from perfkit.queries import AsyncTimedPool

    if kind == "raw":
        pool: Any = AsyncConnectionPool(url, min_size=1, max_size=1, open=False)
    else:
        pool = AsyncTimedPool(url, min_size=1, max_size=1)
    async with pool:
        await pool.wait()
        for _ in range(WARM_UP + loops):
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")


def instructions(kind: str, mode: str, url: str, loops: int) -> int:
    """Instructions the client process ran for ``loops`` statements (plus start-up)."""
    return callgrind_instructions([__file__, "--child", kind, mode, str(loops), "--url", url])


def callgrind_instructions(arguments: list[str]) -> int:
    """Instructions a Python process run with ``arguments`` ran, counted by callgrind."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    done = subprocess.run(
        [*command, sys.executable, *arguments], capture_output=True, text=True, check=True
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--url", default=default)
    parser.add_argument("--short", type=int, default=200)
    parser.add_argument("--long", type=int, default=1200)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "MODE", "LOOPS"))
    args = parser.parse_args()
    if args.child:
        kind, mode, loops = args.child
        if mode == "sync":
            sync_child(kind, args.url, int(loops))
        else:
            asyncio.run(async_child(kind, args.url, int(loops)))
        return
    cases = [(kind, mode) for mode in ("sync", "async") for kind in ("raw", "timed")]
    runs = [(kind, mode, loops) for kind, mode in cases for loops in (args.short, args.long)]
    with ThreadPoolExecutor(max_workers=2) as executor:  # callgrind is single-threaded
        found = executor.map(lambda run: instructions(run[0], run[1], args.url, run[2]), runs)
        counts = dict(zip(runs, found, strict=True))
    extra = args.long - args.short
    per: dict[tuple[str, str], float] = {}
    for kind, mode in cases:
        per[kind, mode] = (counts[kind, mode, args.long] - counts[kind, mode, args.short]) / extra
    for mode in ("sync", "async"):
        raw, timed = per["raw", mode], per["timed", mode]
        print(
            f"{mode:5} connection()+SELECT 1: raw {raw:,.0f}, TimedPool {timed:,.0f} "
            f"instructions per statement: {timed - raw:+,.0f} ({timed / raw:.3f}x)"
        )


if __name__ == "__main__":
    main()
