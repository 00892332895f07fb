"""Multi-process aggregation through Redis, with real worker processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from perfkit.metrics import AsyncSnapshotStore, MetricSnapshot, Sample, SnapshotStore
from perfkit.metrics._store import ProcessName
from perfkit.metrics.snapshot import ProcessSnapshot, merge
from tests.metrics.test_registry import families

WORKER = Path(__file__).with_name("push_worker.py")
ROOT = Path(__file__).parents[2]


def test_merge_sums_counters_and_histograms_and_combines_gauges_by_mode() -> None:
    def snap(process: str, n: float) -> ProcessSnapshot:
        return ProcessSnapshot(process, 0.0, [
            MetricSnapshot("c_total", "counter", "C.", ("k",), [Sample(("a",), n)]),
            MetricSnapshot("h", "histogram", "H.", (), [Sample((), n, (1, 2, 0))], (1.0, 2.0)),
            MetricSnapshot("g_sum", "gauge", "G.", (), [Sample((), n)]),
            MetricSnapshot("g_max", "gauge", "G.", (), [Sample((), n)], mode="max"),
            MetricSnapshot("g_mean", "gauge", "G.", (), [Sample((), n)], mode="mean"),
            MetricSnapshot("g_all", "gauge", "G.", (), [Sample((), n)], mode="all"),
        ])  # fmt: skip

    merged = {m.name: m for m in merge([snap("p1", 1), snap("p2", 3)])}
    assert merged["c_total"].samples == [Sample(("a",), 4)]
    assert merged["h"].samples == [Sample((), 4, (2, 4, 0))]
    assert merged["g_sum"].samples[0].value == 4
    assert merged["g_max"].samples[0].value == 3
    assert merged["g_mean"].samples[0].value == 2
    assert merged["g_all"].labelnames == ("process",)
    assert {s.labels: s.value for s in merged["g_all"].samples} == {("p1",): 1, ("p2",): 3}


def test_merge_skips_a_metric_whose_shape_changed() -> None:
    one = ProcessSnapshot("p1", 0.0, [MetricSnapshot("x", "counter", "X.", (), [Sample((), 1)])])
    other = ProcessSnapshot("p2", 0.0, [MetricSnapshot("x", "gauge", "X.", (), [Sample((), 5)])])
    (merged,) = merge([one, other])
    assert merged.kind == "counter"
    assert merged.samples == [Sample((), 1)]


class Workers:
    def __init__(self, url: str, namespace: str) -> None:
        self.url = url
        self.namespace = namespace
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, n: int) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, str(WORKER), self.url, self.namespace, str(n)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        self.processes.append(process)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "pushed"
        return process

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(5)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()


@pytest.fixture
def workers(redis_url: str, namespace: str) -> Iterator[Workers]:
    pool = Workers(redis_url, namespace)
    yield pool
    pool.close()


def totals(store: SnapshotStore) -> dict[str, float]:
    parsed = families(store.exposition())
    return {
        "jobs": parsed["jobs"][("jobs_total", (("kind", "email"),))],
        "latency_count": parsed["latency_seconds"][("latency_seconds_count", ())],
        "latency_le_0.5": parsed["latency_seconds"][("latency_seconds_bucket", (("le", "0.5"),))],
        "depth": parsed.get("depth", {}).get(("depth", ()), 0.0),
        "peak": parsed.get("peak", {}).get(("peak", ()), 0.0),
    }


@pytest.mark.slow
async def test_processes_aggregate_and_dead_ones_are_retired_not_lost(
    workers: Workers, redis_client: redis.Redis, redis_url: str, namespace: str
) -> None:
    first = workers.start(1)
    workers.start(2)
    third = workers.start(3)
    store = SnapshotStore(redis_client, namespace=namespace, ttl=0.6)

    assert len(store.processes()) == 3
    assert totals(store) == {
        "jobs": 6,
        "latency_count": 6,
        "latency_le_0.5": 6,
        "depth": 6,
        "peak": 3,
    }

    third.kill()  # a crash: no goodbye, its liveness key expires
    third.wait(5)
    deadline = time.monotonic() + 30
    while len(store.processes()) == 3:  # until its liveness key (ttl 0.6 s) expired
        assert time.monotonic() < deadline, "the killed process is still listed"
        await asyncio.sleep(0.05)
    # Its counters and histograms are kept in the retired totals; its gauges are gone.
    assert totals(store) == {
        "jobs": 6,
        "latency_count": 6,
        "latency_le_0.5": 6,
        "depth": 3,
        "peak": 2,
    }
    assert len(store.processes()) == 2
    fields = {f.decode() for f in redis_client.hkeys(f"{namespace}:metrics")}
    assert len(fields) == 3 and "retired" in fields

    assert first.stdin is not None and first.stdout is not None
    first.stdin.write("stop\n")
    first.stdin.flush()
    assert first.stdout.readline().strip() == "stopped"
    assert totals(store) == {
        "jobs": 6,
        "latency_count": 6,
        "latency_le_0.5": 6,
        "depth": 2,
        "peak": 2,
    }
    assert len(store.processes()) == 1

    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        merged = {
            m.name: m
            for m in await AsyncSnapshotStore(client, namespace=namespace, ttl=0.6).collect()
        }
    finally:
        await client.aclose()
    assert merged["jobs_total"].samples[0].value == 6
    assert await AsyncSnapshotStore(client, namespace=namespace, ttl=0.6).processes() != []


def test_exposition_of_many_processes_is_one_read(
    redis_client: redis.Redis, namespace: str
) -> None:
    """200 pushed processes merge in well under a second (no per-process files)."""
    from perfkit.metrics import MetricsRegistry, SnapshotPusher
    from perfkit.metrics.requests import RequestMetrics

    registry = MetricsRegistry()
    metrics = RequestMetrics(registry)
    for route in range(20):
        for _ in range(5):
            metrics.duration.labels("GET", f"/r{route}").observe(0.01)
    pusher = SnapshotPusher(registry, redis_client, namespace=namespace, ttl=30)
    for _ in range(200):
        pusher._name = ProcessName()  # a new identity, as another process would have
        pusher.push()
    store = SnapshotStore(redis_client, namespace=namespace, ttl=30)
    started = time.perf_counter()
    merged = {m.name: m for m in store.collect()}
    elapsed = time.perf_counter() - started
    assert sum(sum(s.counts) for s in merged["http_request_duration_seconds"].samples) == 200 * 100
    assert elapsed < 2.0


async def test_foreign_bytes_in_the_metrics_hash_are_skipped_and_counted(
    redis_client: redis.Redis, redis_url: str, namespace: str
) -> None:
    from perfkit.metrics import MetricsRegistry, SnapshotPusher

    registry = MetricsRegistry()
    registry.counter("jobs_total", "Jobs.").inc(3)
    pusher = SnapshotPusher(registry, redis_client, namespace=namespace, ttl=30)
    pusher.push()
    store = SnapshotStore(redis_client, namespace=namespace, ttl=30)
    foreign = {b"\xff\xfe": b"x", b"junk": b"\xc1 not msgpack", b"retired": b"\x00"}
    redis_client.hset(store.hash_key, mapping=foreign)  # type: ignore[arg-type]
    for field in foreign:
        redis_client.set(store.alive_key(field.decode(errors="replace")), b"1", ex=30)
    exposed = families(store.exposition())
    assert exposed["jobs"][("jobs_total", ())] == 3
    assert exposed["perfkit_metrics_entries_skipped"][
        ("perfkit_metrics_entries_skipped_total", ())
    ] == len(foreign)
    assert store.processes() == [pusher.process]
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        merged = {
            m.name: m for m in await AsyncSnapshotStore(client, namespace=namespace).collect()
        }
    finally:
        await client.aclose()
    assert merged["jobs_total"].samples == [Sample((), 3.0)]


def _asked_at_once(name: ProcessName, threads: int) -> list[str]:
    """What ``threads`` threads get from ``name()``, asking at the same moment."""
    ready = threading.Barrier(threads)
    names: list[str] = []

    def ask() -> None:
        ready.wait()
        names.append(name())

    started = [threading.Thread(target=ask) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return names


def test_threads_asking_for_a_new_process_name_at_once_all_get_the_same_one() -> None:
    """A fleet publisher's first publish and a request reading the fleet ask at once: two
    names made one process two fields of the fleet hash, its numbers counted twice
    (tests/admin/test_fleet.py once saw 8 requests for 4)."""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # thread switches anywhere, as on a loaded machine
    try:
        for _ in range(200):
            names = _asked_at_once(ProcessName(), 4)
            assert len(set(names)) == 1 and names[0], names
    finally:
        sys.setswitchinterval(switch)
