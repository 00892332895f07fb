"""A worker process for the aggregation tests: records known values and pushes them.

Usage: python push_worker.py REDIS_URL NAMESPACE N. Records N requests, N * 0.1 s of
latency and a gauge of N, pushes every 0.1 s, prints "pushed", then waits for "stop" on
stdin (graceful stop, retiring itself) unless it is killed first.
"""

from __future__ import annotations

import sys

import redis

from perfkit.metrics import MetricsRegistry, SnapshotPusher


def main() -> None:
    url, namespace, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    registry = MetricsRegistry()
    jobs = registry.counter("jobs_total", "Jobs.", ("kind",))
    latency = registry.histogram("latency_seconds", "Latency.", buckets=(0.05, 0.5))
    depth = registry.gauge("depth", "Depth.")
    peak = registry.gauge("peak", "Peak.", mode="max")
    for _ in range(n):
        jobs.labels("email").inc()
        latency.observe(0.1)
    depth.set(n)
    peak.set(n)
    client = redis.Redis.from_url(url)
    pusher = SnapshotPusher(registry, client, namespace=namespace, interval=0.1, ttl=0.6)
    pusher.push()
    pusher.start()
    print("pushed", flush=True)
    if sys.stdin.readline().strip() == "stop":
        pusher.stop()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
