"""Fleet view benchmarks (issue 18), measured side by side in one run (ratios).

    python benchmarks/bench_fleet.py [--redis-url URL]

1. Publishing cost, in CPU (``time.process_time``): one publish of a process's state, at
   rest (nothing served yet) and under load (50 routes, 300 statement shapes of which
   the top 100 are published, an hour of trend minutes), in short rounds alternating
   with the baseline — recording one interval's worth of requests at 1,000 requests/s
   (2,000 ``RequestMetrics.end`` calls, what the request middleware itself costs).
   Printed: the publisher's share of one core at the default interval (2 s), and the
   ratio publish / baseline.
2. Admin read latency with 4, 16 and 64 simulated processes (loaded states published to
   Redis): a fleet read plus what the dashboard computes from it (requests, trends, top
   statements), alternating with the same computed from this process's numbers alone
   (no Redis). Printed: the ratio fleet / local, and the elapsed time for context.

Each figure is the median over adjacent pairs of one run, printed as the median of 3
runs with its spread [min-max].
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from _common import interleave, redis_server

from perfkit.metrics import PerformanceMonitor, Trends
from perfkit.metrics.fleet import TOP_STATEMENTS, Fleet, FleetView
from perfkit.queries import QueryStats
from perfkit.queries._merge import export_query_stats

RUNS = 3
PAIRS = 11
INTERVAL = 2.0  # the kit's default fleet_interval
LOAD_RATE = 1000  # requests per second the baseline stands for


def _monitor(loaded: bool) -> tuple[PerformanceMonitor, QueryStats]:
    minute = [time.time() - 3600.0]
    monitor = PerformanceMonitor(trends=Trends(clock=lambda: minute[0]))
    stats = QueryStats()
    if loaded:
        for n in range(3600):  # an hour of minutes, one request a second
            minute[0] += 1.0
            _record(monitor, n % 50, 0.001 * (1 + n % 400))
        for n in range(3 * TOP_STATEMENTS):
            for _ in range(5):
                stats.record(f"SELECT * FROM table_{n} WHERE id = 1", 0.0001 * (n + 1))
    return monitor, stats


def _record(monitor: PerformanceMonitor, route: int, seconds: float) -> None:
    scope = {"type": "http", "path": f"/r{route}/1"}
    monitor.requests.begin(scope, f"/r{route}/1")
    monitor.requests.end(scope, "GET", f"/r{route}/1", 200, seconds, route=f"/r{route}/{{id}}")


def _fleet(client: Any, namespace: str, monitor: PerformanceMonitor, stats: QueryStats) -> Fleet:
    return Fleet(monitor, client, namespace=namespace, interval=INTERVAL,
                 queries=lambda: export_query_stats(stats, TOP_STATEMENTS))  # fmt: skip


def paired(calls: dict[str, Callable[[], Any]], batch: int, clock: Callable[[], float]) -> Any:
    """Median over adjacent rounds of each contender's seconds per call and of the ratio
    of the second contender to the first."""
    samples = interleave(calls, PAIRS, batch, clock)
    first, second = list(calls)
    pairs = list(zip(samples[first], samples[second], strict=True))
    return (statistics.median(b for b, _ in pairs), statistics.median(o for _, o in pairs),
            statistics.median(o / b for b, o in pairs))  # fmt: skip


def spread(values: list[float], fmt: str) -> str:
    ordered = sorted(values)
    return f"{fmt.format(ordered[1])} [{fmt.format(ordered[0])}-{fmt.format(ordered[-1])}]"


def bench_publishing(client: Any, namespace: str) -> None:
    baseline_monitor, _ = _monitor(loaded=False)

    def requests() -> None:
        for n in range(int(LOAD_RATE * INTERVAL)):
            _record(baseline_monitor, n % 50, 0.005)

    for label, loaded in (("at rest", False), ("under load", True)):
        monitor, stats = _monitor(loaded)
        fleet = _fleet(client, f"{namespace}-publish", monitor, stats)
        results = [
            paired({"requests": requests, "publish": fleet.publish}, 1, time.process_time)
            for _ in range(RUNS)
        ]
        share = [r[1] / INTERVAL * 100 for r in results]
        ratios = [r[2] for r in results]
        size = len(client.hget(fleet.hash_key, fleet.process) or b"")
        print(f"publishing {label}: {spread(share, '{:.3f}')} % of one core at a {INTERVAL:.0f} s "
              f"interval; publish / recording {LOAD_RATE} req/s for the interval: "
              f"ratio {spread(ratios, '{:.3f}')} (state {size / 1024:.1f} KiB)")  # fmt: skip


def bench_reads(client: Any, namespace: str) -> None:
    monitor, stats = _monitor(loaded=True)
    for processes in (4, 16, 64):
        ns = f"{namespace}-read{processes}"
        for _ in range(processes - 1):
            _fleet(client, ns, monitor, stats).publish()
        reader = _fleet(client, ns, monitor, stats)

        def dashboard(view: Callable[[], FleetView]) -> Callable[[], None]:
            def run() -> None:
                seen = view()
                seen.requests()
                seen.trend_points(last=60)
                seen.queries(10)

            return run

        contenders = {"local": dashboard(reader.local), "fleet": dashboard(reader.read)}
        results = [paired(contenders, 3, time.perf_counter) for _ in range(RUNS)]
        ratios = [r[2] for r in results]
        elapsed = [r[1] * 1000 for r in results]
        print(f"admin read, {processes} processes: fleet / this process alone ratio "
              f"{spread(ratios, '{:.1f}')}; {spread(elapsed, '{:.1f}')} ms")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", help="a Redis server (default: as the tests find one)")
    options = parser.parse_args()
    with redis_server(options.redis_url, 9) as url:
        client = redis.Redis.from_url(url)
        namespace = f"bench-fleet-{uuid.uuid4().hex[:8]}"
        try:
            bench_publishing(client, namespace)
            bench_reads(client, namespace)
        finally:
            for key in client.scan_iter(match=f"{namespace}*", count=1000):
                client.unlink(key)
            client.close()
