"""Scale-out benchmarks (issue 8, "Many processes"): throughput with 1, 2 and 4 processes.

    python benchmarks/bench_scale.py [--quick] [--jobs N] [--seconds S]

1. RQ job throughput: 1, 2 and 4 ``perfkit worker --burst`` processes (the default
   non-forking ``JobWorker``) drain one queue of N no-op jobs (2000; ``--quick``: 300). So
   that interpreter start-up is not counted, each worker first takes a *gate* job (high
   priority, ahead of the no-ops) that waits until every worker holds one; the clock runs
   from that release to the last no-op's ``ended_at`` (RQ's own timestamp).
2. ``@cached_query`` hit throughput: 1, 2 and 4 processes reading the same key for S seconds
   (2; ``--quick``: 1), total hits/s, for Redis hits (one MGET each) and L1 hits (memory).

Everything runs against a private ``redis-server`` started on a free port (so RQ's ``rq:*``
keys never touch a shared server) and killed at the end. Prints a table with each count's
ratio to one process and writes ``benchmarks/results/scale.json``. The machine's cores are
shared by everything running on it (Redis included): read the ratios with ``os.cpu_count()``
and the load average printed next to them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from _common import rotated_orders

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "scale.json"
COUNTS = (1, 2, 4)
QUEUE = "bench"

if __name__ == "__main__":
    # Workers import job functions by module path and RQ refuses ``__main__`` ones: run
    # this file as the importable module ``bench_scale`` (its folder is on sys.path).
    import bench_scale

    sys.exit(bench_scale.main())


def noop() -> None:
    """The measured job: does nothing."""


def gate(payload: dict[str, Any]) -> None:
    """Hold this worker until ``payload["workers"]`` gates run at once, then note the time."""
    from rq import get_current_job

    job = get_current_job()
    if job is None:
        raise RuntimeError("gate() runs as an RQ job")
    conn = job.connection
    conn.incr(payload["key"])
    deadline = time.monotonic() + 120
    while int(conn.get(payload["key"]) or 0) < payload["workers"]:
        if time.monotonic() > deadline:
            raise RuntimeError("not every worker took a gate")
        time.sleep(0.001)
    conn.set(payload["key"] + ":released", repr(time.time()), nx=True)


# -- 1. workers ---------------------------------------------------------------------------


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def redis_cpu(conn: redis.Redis) -> float:
    info = conn.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_workers(url: str, queue: str, workers: int) -> None:
    """``workers`` ``perfkit worker --burst`` processes on ``queue``, until they quit."""
    paths = [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(paths)}
    command = [sys.executable, "-c", "from perfkit.cli import main; main()", "worker", queue]
    command += ["--burst", "--redis-url", url, "--log-level", "WARNING"]
    processes = [subprocess.Popen(command, env=env) for _ in range(workers)]
    for process in processes:
        if process.wait(600) != 0:
            raise SystemExit(f"a worker exited with {process.returncode}")


def idle_worker_cpu(url: str) -> float:
    """CPU seconds a worker spends starting and quitting with nothing to do."""
    before = children_cpu()
    run_workers(url, f"{QUEUE}-empty", 1)
    return children_cpu() - before


def drain(url: str, workers: int, jobs: int, idle_cpu: float) -> dict[str, Any]:
    """Jobs/s of ``workers`` burst worker processes on one queue of ``jobs`` no-ops, and the
    CPU they and Redis spent per job (workers' start-up and exit, ``idle_cpu`` each, left out)."""
    from perfkit.jobs import JobService, Priority

    conn = redis.Redis.from_url(url)
    run = uuid.uuid4().hex[:8]
    queue = f"{QUEUE}-{run}"
    service = JobService(conn)
    gate_key = f"bench-scale:gate:{run}"
    for _ in range(workers):
        service.enqueue(gate, {"workers": workers, "key": gate_key}, queue=queue, priority=1)
    ids = [service.enqueue(noop, queue=queue, priority=Priority.NORMAL) for _ in range(jobs)]
    cpu_before, redis_before = children_cpu(), redis_cpu(conn)
    run_workers(url, queue, workers)
    worker_cpu = children_cpu() - cpu_before - workers * idle_cpu
    server_cpu = redis_cpu(conn) - redis_before
    released = float(conn.get(gate_key + ":released") or 0)
    with conn.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(f"rq:job:{job_id}", "status", "ended_at", "worker_name")
        rows = pipe.execute()
    if any(status != b"finished" for status, _, _ in rows):
        raise SystemExit(f"{workers} workers: not every job finished")
    last = max(datetime.fromisoformat(ended.decode()).timestamp() for _, ended, _ in rows)
    per_worker = Counter(name.decode() for _, _, name in rows)
    conn.close()
    seconds = last - released
    return {
        "workers": workers,
        "cores_used": (worker_cpu + server_cpu) / seconds,
        "jobs": jobs,
        "seconds": seconds,
        "jobs_per_s": jobs / seconds,
        "jobs_per_worker": sorted(per_worker.values(), reverse=True),
        "worker_cpu_ms_per_job": worker_cpu / jobs * 1000,
        "redis_cpu_ms_per_job": server_cpu / jobs * 1000,
    }


# -- 2. cached_query hits -----------------------------------------------------------------


def _hitter(url: str, namespace: str, l1: bool, commands: Any, out: Any) -> None:
    """One hit process: reads one cached key from the start time to the deadline of each
    ``(start, deadline)`` command (monotonic), and reports how many reads it made and the
    CPU seconds it used doing so."""
    from perfkit import Settings
    from perfkit.cache import RedisService, cached_query

    cache = RedisService(url, namespace=namespace, settings=Settings(), l1=l1)
    if l1 and not cache.wait_l1_ready():
        raise SystemExit("L1 did not connect")

    @cached_query(ttl=600, tags=["products"], cache=cache)
    def product(product_id: int) -> dict[str, Any]:
        return {"id": product_id, "name": "Lamp", "price": 9.5, "tags": ["home", "light"]}

    product(1)
    time.sleep(0.05)  # our own write's tracking push, so that the next read stays in L1
    product(1)
    out.put(0)
    while (command := commands.get()) is not None:
        start, deadline = command
        time.sleep(max(0.0, start - time.monotonic()))
        hits, cpu = 0, time.process_time()
        while time.monotonic() < deadline:
            for _ in range(100):
                product(1)
            hits += 100
        out.put((hits, time.process_time() - cpu))
    if cache.stats().misses > 1:
        raise SystemExit("a read missed: not a hit benchmark")
    cache.close()


def hit_rates(url: str, l1: bool, seconds: float, rounds: int) -> list[dict[str, Any]]:
    """Total hits/s of 1, 2 and 4 processes reading one cached key: the median of
    ``rounds`` runs, the counts taking turns."""
    ctx = multiprocessing.get_context("spawn")
    namespace = f"bench-scale-{'l1' if l1 else 'redis'}"
    pool = [(ctx.Queue(), ctx.Queue()) for _ in range(max(COUNTS))]
    processes = [
        ctx.Process(target=_hitter, args=(url, namespace, l1, commands, out))
        for commands, out in pool
    ]
    for process in processes:
        process.start()
    for _, out in pool:
        out.get(timeout=120)
    rates: dict[int, list[float]] = {n: [] for n in COUNTS}
    cores: dict[int, list[float]] = {n: [] for n in COUNTS}
    for order in rotated_orders(list(COUNTS), rounds):
        for n in order:
            start = time.monotonic() + 0.05
            for commands, _ in pool[:n]:
                commands.put((start, start + seconds))
            results = [out.get(timeout=seconds + 60) for _, out in pool[:n]]
            rates[n].append(sum(hits for hits, _ in results) / seconds)
            cores[n].append(sum(cpu for _, cpu in results) / seconds)
    for commands, _ in pool:
        commands.put(None)
    for process in processes:
        process.join(30)
        if process.exitcode != 0:
            raise SystemExit(f"a hit process exited with {process.exitcode}")
    return [
        {
            "processes": n,
            "l1": l1,
            "hits_per_s": statistics.median(rates[n]),
            "runs": rates[n],
            "cores_used": statistics.median(cores[n]),
        }
        for n in COUNTS
    ]


# -- report -------------------------------------------------------------------------------


def table(title: str, unit: str, rows: list[tuple[int, float, str]]) -> list[str]:
    base = rows[0][1]
    lines = [title, f"  {'processes':>9}  {unit:>12}  {'vs 1':>6}  detail"]
    lines += [
        f"  {n:>9}  {rate:>12,.0f}  {rate / base:>5.2f}x  {detail}" for n, rate, detail in rows
    ]
    return lines


def main() -> int:
    sys.path.insert(0, str(ROOT))  # tests._servers: the private server the tests use
    from tests._servers import PrivateRedis

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 jobs, 1 s per hit run")
    parser.add_argument("--jobs", type=int, help="no-op jobs per worker count (default 2000)")
    parser.add_argument("--seconds", type=float, help="seconds per hit run (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="hit runs per count (median)")
    args = parser.parse_args()
    jobs = args.jobs or (300 if args.quick else 2000)
    seconds = args.seconds or (1.0 if args.quick else 2.0)
    server = PrivateRedis()
    try:
        load_before = os.getloadavg()
        idle_cpu = idle_worker_cpu(server.url)
        drains = [drain(server.url, n, jobs, idle_cpu) for n in COUNTS]
        hits = {l1: hit_rates(server.url, l1, seconds, args.rounds) for l1 in (False, True)}
        load_after = os.getloadavg()
    finally:
        server.close()
    cores = os.cpu_count() or 1
    lines = [
        f"bench_scale: {cores} cores, load average {load_before[0]:.1f} before and "
        f"{load_after[0]:.1f} after (other work on the machine), private redis-server",
        "",
    ]
    lines += table(
        f"RQ no-op jobs, `perfkit worker --burst` processes draining one queue of {jobs}",
        "jobs/s",
        [
            (
                d["workers"],
                d["jobs_per_s"],
                f"{d['seconds']:.2f} s, {d['cores_used']:.2f} cores busy; CPU per job: "
                f"workers {d['worker_cpu_ms_per_job']:.1f} ms, Redis "
                f"{d['redis_cpu_ms_per_job']:.1f} ms; jobs per worker {d['jobs_per_worker']}",
            )
            for d in drains
        ],
    )
    cpu_per_job = drains[0]["worker_cpu_ms_per_job"] + drains[0]["redis_cpu_ms_per_job"]
    lines.append(
        f"  {cpu_per_job:.1f} ms of CPU per job (1 worker): {cores} idle cores would cap "
        f"this at ~{cores * 1000 / cpu_per_job:,.0f} jobs/s"
    )
    for l1, runs in hits.items():
        lines.append("")
        lines += table(
            f"@cached_query hits on one key, {'L1 (memory)' if l1 else 'Redis (one MGET)'}: "
            f"total, median of {args.rounds} x {seconds:g} s",
            "hits/s",
            [(h["processes"], h["hits_per_s"], f"{h['cores_used']:.2f} cores busy") for h in runs],
        )
    print("\n".join(lines))
    RESULTS.parent.mkdir(exist_ok=True)
    report = {
        "context": {
            "cpu_count": cores,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "jobs": jobs,
            "hit_seconds": seconds,
            "hit_rounds": args.rounds,
            "idle_worker_cpu_s": idle_cpu,
        },
        "workers": [d | {"ratio": d["jobs_per_s"] / drains[0]["jobs_per_s"]} for d in drains],
        "hits": [
            h | {"ratio": h["hits_per_s"] / runs[0]["hits_per_s"]}
            for runs in hits.values()
            for h in runs
        ],
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    return 0
