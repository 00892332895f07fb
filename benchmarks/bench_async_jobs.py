"""Async job throughput (issue 24): a real ``perfkit worker --concurrency N`` process vs a
real RQ ``SimpleWorker`` process, on the same ``async def`` jobs.

    python benchmarks/bench_async_jobs.py [--redis-url URL] [--rounds 3] [--quick]

Jobs await ``asyncio.sleep(s)`` for s = 0.05 and 0 (a no-op). RQ's worker runs an async
job with ``asyncio.run``, one at a time; perfkit's runs up to N at once on its event loop,
for N = 1, 16, 50. Each round measures one perfkit worker and one RQ worker back to back
(alternating which goes first) on fresh queues: the worker process is started and idle,
the jobs are enqueued in one pipeline, and the clock runs until the last is finished. A
row reports perfkit's median jobs/s, RQ's, and the median (with range) of the rounds'
perfkit/RQ ratios. Redis is found as the tests find it; the run uses DB 12 and queues
named ``bench-<random>``, and deletes only the keys it created.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
from _common import delete_rq_keys, redis_server, rotated_orders
from rq import Queue
from rq.registry import FinishedJobRegistry

from perfkit.jobs.serializer import JobSerializer
from perfkit.settings import redacted_url

if __name__ == "__main__":
    # Workers import job functions by module path and RQ refuses ``__main__`` ones: run
    # this file as the importable module ``bench_async_jobs`` (its folder is on sys.path).
    import bench_async_jobs

    sys.exit(bench_async_jobs.main())

BENCH_DB = 12
CONCURRENCIES = (1, 16, 50)
# Seconds each job awaits, and how many jobs a measurement runs (RQ runs them one by one).
SLEEPS = {0.05: 100, 0.0: 400}
RQ_SIMPLE_WORKER = (
    "import os, sys, redis; from rq import SimpleWorker; "
    "from perfkit.jobs.serializer import JobSerializer; "
    "SimpleWorker([sys.argv[1]], connection=redis.Redis.from_url(os.environ['REDIS_URL']), "
    "serializer=JobSerializer).work(logging_level='WARNING')"
)


async def nap(seconds: float) -> None:
    """The job: await ``seconds``."""
    await asyncio.sleep(seconds)


class Bench:
    """Owns the connection and the queue names, and removes what it created."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = redis.Redis.from_url(url)
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}"
        self.queue_names: list[str] = []
        self.job_ids: list[str] = []

    def jobs_per_second(self, contender: str, seconds: float, jobs: int, concurrency: int) -> float:
        """One measurement: a fresh queue, one worker process of ``contender``."""
        queue = Queue(
            f"{self.prefix}-{len(self.queue_names)}", connection=self.conn, serializer=JobSerializer
        )
        self.queue_names.append(queue.name)
        env = dict(os.environ, REDIS_URL=self.url, PYTHONPATH=str(Path(__file__).parent))
        if contender == "perfkit":
            command = [sys.executable, "-m", "perfkit.cli", "worker", queue.name, "--quiet"]
            command += ["--import", "bench_async_jobs", "--concurrency", str(concurrency)]
            command += ["--log-level", "WARNING"]
        else:
            command = [sys.executable, "-c", RQ_SIMPLE_WORKER, queue.name]
        process = subprocess.Popen(command, env=env)
        try:
            deadline = time.monotonic() + 60
            while self.conn.scard(f"rq:workers:{queue.name}") < 1:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{contender}: the worker did not start")
                time.sleep(0.05)
            finished = FinishedJobRegistry(queue.name, connection=self.conn)
            start = time.perf_counter()
            with self.conn.pipeline() as pipe:
                created = queue.enqueue_many(
                    [Queue.prepare_data(nap, (seconds,)) for _ in range(jobs)], pipeline=pipe
                )
                pipe.execute()
            while self.conn.zcard(finished.key) < jobs:
                time.sleep(0.005)
            elapsed = time.perf_counter() - start
            self.job_ids.extend(job.id for job in created)
        finally:
            # RQ's SimpleWorker may take a minute to stop on SIGTERM (its pubsub thread,
            # see perfkit._compat.redis); both are idle now, nothing is lost by SIGKILL.
            process.send_signal(signal.SIGTERM if contender == "perfkit" else signal.SIGKILL)
            process.wait(30)
        return jobs / elapsed

    def row(self, seconds: float, concurrency: int, rounds: int, jobs: int) -> str:
        rates: dict[str, list[float]] = {"perfkit": [], "rq": []}
        ratios = []
        for order in rotated_orders(["perfkit", "rq"], rounds):
            rate = {name: self.jobs_per_second(name, seconds, jobs, concurrency) for name in order}
            for name, value in rate.items():
                rates[name].append(value)
            ratios.append(rate["perfkit"] / rate["rq"])
        return (
            f"sleep {seconds:<4} concurrency {concurrency:>2}: "
            f"perfkit {statistics.median(rates['perfkit']):7.1f} jobs/s, "
            f"rq SimpleWorker {statistics.median(rates['rq']):6.1f} jobs/s, "
            f"ratio {statistics.median(ratios):6.2f} (range {min(ratios):.2f}-{max(ratios):.2f})"
        )

    def cleanup(self) -> None:
        """Delete the jobs, results and queue keys this run created (only those)."""
        delete_rq_keys(self.conn, list(self.job_ids), list(self.queue_names))
        self.conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="Redis to use (its DB 12)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs per row (default 3)")
    parser.add_argument("--quick", action="store_true", help="1 round, a quarter of the jobs")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    started = time.perf_counter()
    with redis_server(args.redis_url, BENCH_DB) as url:
        print(f"Redis {redacted_url(url)}; python {platform.python_version()}", flush=True)
        bench = Bench(url)
        try:
            for seconds, jobs in SLEEPS.items():
                for concurrency in CONCURRENCIES:
                    count = jobs // 4 if args.quick else jobs
                    print(bench.row(seconds, concurrency, rounds, count), flush=True)
        finally:
            bench.cleanup()
    print(f"{time.perf_counter() - started:.0f} s")
    return 0
