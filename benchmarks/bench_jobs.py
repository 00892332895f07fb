"""Job benchmarks (issue 4): ratios measured side by side in one run against one Redis.

    python benchmarks/bench_jobs.py [--redis-url URL] [--quick]

1. Enqueue: ``JobService.enqueue`` of a processor (payload validated with msgspec, retries,
   priority queue) vs raw ``rq.Queue.enqueue`` of a function with the same payload and the
   same JSON serializer. Target <= 1.05. For context: raw RQ given the same retry and
   failure TTL (what the extra job fields cost vs what JobService itself costs), raw RQ
   with its default pickle serializer, and ``JobService.enqueue`` of a plain function.
2. Worker throughput on no-op jobs (jobs/s, burst, in-process): perfkit's default
   ``JobWorker`` (non-forking) vs ``ForkingJobWorker``, next to RQ's own ``SimpleWorker`` and
   ``Worker``. ``perfkit worker`` defaults to the non-forking one; the ratio says by how much
   it is faster, and the JobWorker/SimpleWorker row what perfkit's heartbeat thread costs.
3. Scale-out on no-op jobs: 1, 2 and 4 ``perfkit worker`` processes on one queue vs as many
   processes of RQ's own ``SimpleWorker`` (JSON serializer), against the same Redis. The
   workers are started and idle before the jobs are enqueued in one pipeline; the clock runs
   until every job is finished. Each round measures perfkit and RQ back to back (order
   alternating); a row's ratio is the median of the rounds' perfkit/RQ ratios.

Contenders run interleaved over rounds (rotating order); a row's ratio is the median time per
job of perfkit over the median of its baseline. Redis is found as the tests find it; the run
uses DB 12 and queues named ``bench-<random>``, and deletes only the keys it created. Results
also go to ``benchmarks/results/jobs.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec
import redis
from _common import Row, delete_rq_keys, interleave, redis_server, rotated_orders
from rq import Queue, Retry, SimpleWorker, Worker
from rq.registry import FinishedJobRegistry
from rq.serializers import DefaultSerializer

from perfkit.jobs import JobService, allow_jobs, processor
from perfkit.jobs.serializer import JobSerializer
from perfkit.jobs.worker import ForkingJobWorker, JobWorker
from perfkit.settings import redacted_url

if __name__ == "__main__":
    # Workers import job functions by module path and RQ refuses ``__main__`` ones: run
    # this file as the importable module ``bench_jobs`` (its folder is on sys.path).
    import bench_jobs

    sys.exit(bench_jobs.main())

BENCH_DB = 12
ENQUEUE_TARGET = 1.05
FAILED_TTL = 7 * 24 * 3600
RESULTS = Path(__file__).resolve().parent / "results" / "jobs.json"


class OrderPayload(msgspec.Struct, kw_only=True):
    """A typical small payload."""

    order_id: int
    customer: str
    items: list[str]
    total: float


def noop(payload: Any = None) -> None:
    """The job every contender runs or enqueues."""


@processor("bench.noop", queue="bench")
def noop_processor(payload: OrderPayload) -> None:
    """The same no-op, as a typed processor."""


# The in-process workers run `noop`, a plain function: allow this module's functions, as
# `perfkit worker --import bench_jobs` does for the worker processes.
allow_jobs(__name__)


PAYLOAD = {"order_id": 123, "customer": "ada@example.com", "items": ["a", "b"], "total": 9.5}


@dataclass
class Plan:
    """How much work each section does."""

    enqueue_rounds: int = 40
    enqueue_batch: int = 100
    worker_rounds: int = 3
    worker_jobs: int = 300
    scale_rounds: int = 3
    scale_jobs: int = 600
    scale_processes: tuple[int, ...] = (1, 2, 4)


QUICK = Plan(
    enqueue_rounds=10,
    enqueue_batch=50,
    worker_rounds=1,
    worker_jobs=100,
    scale_rounds=1,
    scale_jobs=200,
)

# RQ's SimpleWorker as a process of its own, configured as a perfkit worker's queue needs.
RQ_SIMPLE_WORKER = (
    "import os, sys, redis; from rq import SimpleWorker; "
    "from perfkit.jobs.serializer import JobSerializer; "
    "SimpleWorker([sys.argv[1]], connection=redis.Redis.from_url(os.environ['REDIS_URL']), "
    "serializer=JobSerializer).work(logging_level='WARNING')"
)


class Bench:
    """Owns the connection and the queue names, and removes what it created."""

    def __init__(self, url: str, plan: Plan) -> None:
        self.url = url
        self.conn = redis.Redis.from_url(url)
        self.plan = plan
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}"
        self.job_ids: list[str] = []
        self.queue_names: set[str] = set()

    def queue(self, suffix: str, serializer: Any = JobSerializer) -> Queue:
        name = f"{self.prefix}-{suffix}"
        self.queue_names.add(name)
        return Queue(name, connection=self.conn, serializer=serializer)

    def enqueue_rows(self) -> list[Row]:
        service = JobService(self.conn)
        raw_json = self.queue("raw-json")
        raw_pickle = self.queue("raw-pickle", DefaultSerializer)
        base = f"{self.prefix}-svc"
        self.queue_names.update({base, f"{base}:high", f"{base}:low"})
        ids = self.job_ids

        calls: dict[str, Callable[[], Any]] = {
            "rq json": lambda: ids.append(raw_json.enqueue(noop, PAYLOAD).id),
            "rq pickle": lambda: ids.append(raw_pickle.enqueue(noop, PAYLOAD).id),
            "rq json, same options": lambda: ids.append(
                raw_json.enqueue(
                    noop, PAYLOAD, retry=Retry(3, [1, 2, 4]), failure_ttl=FAILED_TTL
                ).id
            ),
            "perfkit processor": lambda: ids.append(
                service.enqueue("bench.noop", PAYLOAD, queue=base)
            ),
            "perfkit function": lambda: ids.append(service.enqueue(noop, PAYLOAD, queue=base)),
        }
        samples = interleave(calls, self.plan.enqueue_rounds, self.plan.enqueue_batch)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        us = {name: value * 1e6 for name, value in medians.items()}
        ratio = medians["perfkit processor"] / medians["rq json"]
        detail = {f"{name} us": round(value, 1) for name, value in us.items()}
        return [
            Row(
                "enqueue (typed processor)",
                f"rq Queue.enqueue {us['rq json']:.0f} us",
                f"JobService.enqueue {us['perfkit processor']:.0f} us",
                ratio,
                f"<= {ENQUEUE_TARGET}",
                "PASS" if ratio <= ENQUEUE_TARGET else "MISS",
                detail,
            ),
            Row(
                "enqueue (plain function)",
                f"rq Queue.enqueue {us['rq json']:.0f} us",
                f"JobService.enqueue {us['perfkit function']:.0f} us",
                medians["perfkit function"] / medians["rq json"],
                "info",
                "info",
            ),
            Row(
                "enqueue: JobService vs rq with the same retry/TTL",
                f"rq Queue.enqueue(retry=, failure_ttl=) {us['rq json, same options']:.0f} us",
                f"JobService.enqueue {us['perfkit processor']:.0f} us",
                medians["perfkit processor"] / medians["rq json, same options"],
                "info",
                "info",
            ),
            Row(
                "enqueue: rq pickle vs rq json",
                f"rq json {us['rq json']:.0f} us",
                f"rq pickle {us['rq pickle']:.0f} us",
                medians["rq pickle"] / medians["rq json"],
                "info",
                "info",
            ),
        ]

    def _drain_seconds(self, make: Callable[[list[str]], Any], suffix: str) -> float:
        queue = self.queue(suffix)
        jobs = self.plan.worker_jobs
        with self.conn.pipeline() as pipe:
            created = queue.enqueue_many(
                [Queue.prepare_data(noop, (PAYLOAD,)) for _ in range(jobs)], pipeline=pipe
            )
            pipe.execute()
        self.job_ids.extend(job.id for job in created)
        worker = make([queue.name])
        start = time.perf_counter()
        worker.work(burst=True, logging_level="WARNING")
        elapsed = time.perf_counter() - start
        if len(queue) or queue.failed_job_registry.count:
            raise RuntimeError(f"{suffix}: jobs left or failed after the burst")
        return elapsed / jobs

    def worker_rows(self) -> list[Row]:
        def perfkit_simple(names: list[str]) -> Any:
            return JobWorker(names, connection=self.conn)

        def perfkit_fork(names: list[str]) -> Any:
            return ForkingJobWorker(names, connection=self.conn)

        def rq_simple(names: list[str]) -> Any:
            return SimpleWorker(names, connection=self.conn, serializer=JobSerializer)

        def rq_fork(names: list[str]) -> Any:
            return Worker(names, connection=self.conn, serializer=JobSerializer)

        makers = {
            "JobWorker": perfkit_simple,
            "ForkingJobWorker": perfkit_fork,
            "rq SimpleWorker": rq_simple,
            "rq Worker": rq_fork,
        }
        samples: dict[str, list[float]] = {name: [] for name in makers}
        for r, order in enumerate(rotated_orders(list(makers), self.plan.worker_rounds)):
            for name in order:
                suffix = f"w{r}-{name.replace(' ', '-')}"
                samples[name].append(self._drain_seconds(makers[name], suffix))
        per_job = {name: statistics.median(values) for name, values in samples.items()}
        rate = {name: 1 / seconds for name, seconds in per_job.items()}
        detail = {f"{name} jobs/s": round(value, 1) for name, value in rate.items()}
        return [
            Row(
                "worker throughput: default vs forking",
                f"ForkingJobWorker {rate['ForkingJobWorker']:.0f} jobs/s",
                f"JobWorker {rate['JobWorker']:.0f} jobs/s",
                rate["JobWorker"] / rate["ForkingJobWorker"],
                "> 1 (default is the fast one)",
                "PASS" if rate["JobWorker"] > rate["ForkingJobWorker"] else "MISS",
                detail,
            ),
            Row(
                "worker throughput: JobWorker vs rq SimpleWorker",
                f"rq SimpleWorker {rate['rq SimpleWorker']:.0f} jobs/s",
                f"JobWorker {rate['JobWorker']:.0f} jobs/s",
                rate["JobWorker"] / rate["rq SimpleWorker"],
                "info",
                "info",
            ),
            Row(
                "worker throughput: ForkingJobWorker vs rq Worker",
                f"rq Worker {rate['rq Worker']:.0f} jobs/s",
                f"ForkingJobWorker {rate['ForkingJobWorker']:.0f} jobs/s",
                rate["ForkingJobWorker"] / rate["rq Worker"],
                "info",
                "info",
            ),
        ]

    def _processes_seconds(self, contender: str, count: int, suffix: str) -> float:
        """Seconds per job for ``count`` worker processes of ``contender`` on a fresh queue."""
        queue = self.queue(suffix)
        folder = str(Path(__file__).resolve().parent)
        # The URL goes in the environment, as perfkit demo passes it.
        env = dict(os.environ, REDIS_URL=self.url, PYTHONPATH=folder)
        if contender == "perfkit":
            command = [sys.executable, "-m", "perfkit.cli", "worker", queue.name]
            command += ["--import", "bench_jobs", "--log-level", "WARNING"]
        else:
            command = [sys.executable, "-c", RQ_SIMPLE_WORKER, queue.name]
        # perfkit listens on name:high, name and name:low: count registrations on `name`.
        workers_key = f"rq:workers:{queue.name}"
        processes = [subprocess.Popen(command, env=env) for _ in range(count)]
        try:
            deadline = time.monotonic() + 60
            while self.conn.scard(workers_key) < count:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{contender}: {count} workers did not start")
                time.sleep(0.05)
            jobs = self.plan.scale_jobs
            finished = FinishedJobRegistry(queue.name, connection=self.conn)
            start = time.perf_counter()
            with self.conn.pipeline() as pipe:
                created = queue.enqueue_many(
                    [Queue.prepare_data(noop, (PAYLOAD,)) for _ in range(jobs)], pipeline=pipe
                )
                pipe.execute()
            while self.conn.zcard(finished.key) < jobs:
                time.sleep(0.005)
            elapsed = time.perf_counter() - start
            self.job_ids.extend(job.id for job in created)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(30)
        return elapsed / jobs

    def scale_rows(self) -> list[Row]:
        rows = []
        for count in self.plan.scale_processes:
            ratios, rates = [], {"perfkit": [], "rq": []}
            for r, order in enumerate(rotated_orders(["perfkit", "rq"], self.plan.scale_rounds)):
                rate = {}
                for contender in order:
                    suffix = f"s{count}-{r}-{contender}"
                    rate[contender] = 1 / self._processes_seconds(contender, count, suffix)
                    rates[contender].append(rate[contender])
                ratios.append(rate["perfkit"] / rate["rq"])
            perfkit_rate = statistics.median(rates["perfkit"])
            rq_rate = statistics.median(rates["rq"])
            rows.append(
                Row(
                    f"throughput, {count} worker process(es): perfkit vs rq SimpleWorker",
                    f"rq SimpleWorker x{count} {rq_rate:.0f} jobs/s",
                    f"perfkit worker x{count} {perfkit_rate:.0f} jobs/s",
                    statistics.median(ratios),
                    "info",
                    "info",
                    {
                        "perfkit jobs/s": round(perfkit_rate, 1),
                        "rq jobs/s": round(rq_rate, 1),
                        "round ratios": [round(ratio, 3) for ratio in ratios],
                    },
                )
            )
        return rows

    def cleanup(self) -> None:
        """Delete the jobs, results and queue keys this run created (only those)."""
        delete_rq_keys(self.conn, list(self.job_ids), list(self.queue_names))
        self.conn.close()


def print_rows(rows: list[Row]) -> None:
    width = max(len(row.name) for row in rows)
    for row in rows:
        ratio = f"{row.ratio:.3f}" if row.ratio is not None else "-"
        print(
            f"{row.name.ljust(width)}  ratio {ratio:>6}  target {row.target:<30} "
            f"{row.verdict:<4}  ({row.perfkit} / {row.baseline})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="Redis to use (its DB 12)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument(
        "--only-scale", action="store_true", help="only the 1/2/4 worker processes section"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    started = time.perf_counter()
    with redis_server(args.redis_url, BENCH_DB) as url:
        print(f"Redis {redacted_url(url)}; python {platform.python_version()}")
        bench = Bench(url, plan)
        try:
            rows = [] if args.only_scale else bench.enqueue_rows() + bench.worker_rows()
            rows += bench.scale_rows()
        finally:
            bench.cleanup()
    print_rows(rows)
    elapsed = time.perf_counter() - started
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"plan": asdict(plan), "rows": [asdict(row) for row in rows]}, indent=2) + "\n"
    )
    print(f"\n{elapsed:.0f} s; results in {RESULTS}")
    return 0 if all(row.verdict != "MISS" for row in rows) else 1
