"""Time from ``JobService.cancel`` to the job's end as ``canceled``, per kind of job (issue 24).

    python benchmarks/bench_cancel.py [--redis-url URL] [--trials 10]

A time with a bound, not a ratio (nothing else cancels RQ jobs this way). Kinds:

- queued: no worker takes the job; the time is the ``cancel`` call itself;
- async: a job awaiting a minute on ``perfkit worker --concurrency 8``: its task is
  cancelled (RQ's stop-execution command over pubsub, then the loop);
- forked: a sync job sleeping a minute in a ``perfkit worker --fork`` horse, killed;
- cooperative sync: a sync job in a ``perfkit worker`` calling ``check_cancelled()``
  every 10 ms (the time includes up to one step).

The clock starts before ``cancel`` and stops when the job's status reads ``canceled``
(polled every millisecond). Redis is found as the tests find it; the run uses DB 12 and
queues named ``bench-<random>``, and deletes only the keys it created.
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
from collections.abc import Callable
from pathlib import Path

import redis
from _common import delete_rq_keys, redis_server
from rq.job import Job

from perfkit.jobs import JobService, check_cancelled
from perfkit.settings import redacted_url

if __name__ == "__main__":
    # Workers import job functions by module path and RQ refuses ``__main__`` ones: run
    # this file as the importable module ``bench_cancel`` (its folder is on sys.path).
    import bench_cancel

    sys.exit(bench_cancel.main())

BENCH_DB = 12
KINDS = {"async": ["--concurrency", "8"], "forked": ["--fork"], "cooperative sync": []}


async def await_long() -> None:
    """The async job: await a minute."""
    await asyncio.sleep(60)


def sleep_long() -> None:
    """The sync job a horse runs: sleep a minute, never checking."""
    time.sleep(60)


def steps() -> None:
    """The cooperative sync job: 10 ms steps, checking between them, for a minute."""
    for _ in range(6000):
        check_cancelled()
        time.sleep(0.01)


JOBS: dict[str, Callable[[], object]] = {
    "async": await_long,
    "forked": sleep_long,
    "cooperative sync": steps,
}


class Bench:
    """Owns the connection and the queue names, and removes what it created."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = redis.Redis.from_url(url)
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}"
        self.queues: list[str] = []
        self.job_ids: list[str] = []

    def _wait_for(self, job_id: str, status: bytes, timeout: float) -> None:
        """Poll the job's status every millisecond until it is ``status``."""
        deadline = time.monotonic() + timeout
        while self.conn.hget(Job.key_for(job_id), "status") != status:
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job_id} not {status.decode()} after {timeout} s")
            time.sleep(0.001)

    def times(self, kind: str, trials: int) -> list[float]:
        """Seconds from cancel to ``canceled`` for ``trials`` jobs of ``kind``."""
        queue = f"{self.prefix}-{len(self.queues)}"
        self.queues.append(queue)
        service = JobService(self.conn, queues=(queue,), retry_attempts=3)
        process = None
        if kind != "queued":
            env = dict(os.environ, REDIS_URL=self.url, PYTHONPATH=str(Path(__file__).parent))
            command = [sys.executable, "-m", "perfkit.cli", "worker", queue, "--quiet"]
            command += ["--import", "bench_cancel", "--log-level", "WARNING", *KINDS[kind]]
            process = subprocess.Popen(command, env=env)
        elapsed = []
        try:
            for _ in range(trials):
                job_id = service.enqueue(JOBS.get(kind, sleep_long), queue=queue)
                self.job_ids.append(job_id)
                if process is not None:
                    self._wait_for(job_id, b"started", 60)
                    time.sleep(0.05)  # well inside the job
                start = time.perf_counter()
                service.cancel(job_id)
                self._wait_for(job_id, b"canceled", 30)
                elapsed.append(time.perf_counter() - start)
        finally:
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
        return elapsed

    def cleanup(self) -> None:
        """Delete the jobs, results and queue keys this run created (only those)."""
        delete_rq_keys(self.conn, list(self.job_ids), list(self.queues))
        self.conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="Redis to use (its DB 12)")
    parser.add_argument("--trials", type=int, default=10, help="jobs per kind (default 10)")
    args = parser.parse_args()
    with redis_server(args.redis_url, BENCH_DB) as url:
        print(f"Redis {redacted_url(url)}; python {platform.python_version()}", flush=True)
        bench = Bench(url)
        try:
            for kind in ["queued", *KINDS]:
                ms = [1000 * seconds for seconds in bench.times(kind, args.trials)]
                print(
                    f"{kind:<17} cancel -> canceled: median {statistics.median(ms):7.1f} ms, "
                    f"max {max(ms):7.1f} ms ({len(ms)} jobs)",
                    flush=True,
                )
        finally:
            bench.cleanup()
    return 0
