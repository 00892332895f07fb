"""The fleet view's publishing, merging and retiring, on a real Redis (issue 18).

Several :class:`Fleet` objects over their own monitors stand for several processes (each
has its own process name); tests/fleet/ runs the same under real multi-process servers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated

import msgspec
import pytest
import redis

from perfkit._stat_kinds import GaugeField
from perfkit.metrics import PerformanceMonitor, StatsCollector
from perfkit.metrics.fleet import RETIRED, TOP_STATEMENTS, TREND_BUCKETS, Fleet
from perfkit.metrics.trends import estimate_quantile
from perfkit.queries import QueryStats
from perfkit.queries._merge import export_query_stats
from tests._servers import PrivateRedis


def _fleet(
    client: redis.Redis, namespace: str, stats: QueryStats | None = None, retire_after: float = 300
) -> Fleet:
    queries = (lambda: export_query_stats(stats, TOP_STATEMENTS)) if stats is not None else None
    return Fleet(PerformanceMonitor(), client, namespace=namespace, interval=0.5, queries=queries,
                 retire_after=retire_after)  # fmt: skip


def _serve(fleet: Fleet, count: int, seconds: float, *, status: int = 200) -> None:
    requests = fleet.monitor.requests
    for n in range(count):
        scope = {"type": "http", "path": f"/items/{n}"}
        requests.begin(scope)
        requests.end(scope, "GET", "/items/1", status, seconds, route="/items/{id}")


@pytest.fixture
def pair(redis_client: redis.Redis, namespace: str) -> Iterator[tuple[Fleet, Fleet]]:
    a, b = _fleet(redis_client, namespace), _fleet(redis_client, namespace)
    yield a, b
    a.stop()
    b.stop()


def test_requests_sum_and_the_p95_comes_from_the_merged_histogram(
    pair: tuple[Fleet, Fleet],
) -> None:
    a, b = pair
    _serve(a, 90, 0.004)
    _serve(b, 10, 0.8, status=500)
    b.publish()
    view = a.read()
    summary = view.requests()
    assert (summary.requests, summary.errors, summary.slow) == (100, 10, 0)
    assert view.scope == "fleet" and len(view.processes) == 2
    bounds = a.monitor.requests.duration.bounds
    counts = [x + y for x, y in zip(_counts(a), _counts(b), strict=True)]
    assert summary.p95_ms == pytest.approx(estimate_quantile(bounds, counts, 0.95) * 1000)
    # The mean of the two processes' p95s would be ~400 ms; the fleet's p95 is a slow one.
    assert summary.p95_ms is not None and summary.p95_ms > 500
    assert summary.avg_ms == pytest.approx((90 * 4 + 10 * 800) / 100)


def _counts(fleet: Fleet) -> list[int]:
    return list(fleet.monitor.requests.duration.snapshot().samples[0].counts)


def test_the_answering_process_includes_its_own_live_numbers(pair: tuple[Fleet, Fleet]) -> None:
    a, b = pair
    a.publish()
    b.publish()
    _serve(a, 7, 0.01)  # after a's publish: only its live numbers have them
    assert a.read().requests().requests == 7
    assert b.read().requests().requests == 0  # b sees a as published (at most one interval old)


def test_trends_merge_per_minute(pair: tuple[Fleet, Fleet]) -> None:
    a, b = pair
    _serve(a, 3, 0.01)
    _serve(b, 4, 0.02)
    b.publish()
    points = a.read().trend_points(last=5)
    assert sum(p.requests for p in points) == 7
    assert points[-1].requests == 7 or points[-2].requests + points[-1].requests == 7


def test_statements_merge_by_fingerprint_with_percentiles_of_the_merged_buckets(
    redis_client: redis.Redis, namespace: str
) -> None:
    fast, slow = QueryStats(slow_query_ms=100), QueryStats(slow_query_ms=100)
    for n in range(90):
        fast.record(f"SELECT * FROM items WHERE id = {n}", 0.001, rows=1)
    for n in range(10):
        slow.record(f"SELECT * FROM items WHERE id = {n}", 0.5, rows=1, failed=n == 0)
    a, b = _fleet(redis_client, namespace, fast), _fleet(redis_client, namespace, slow)
    b.publish()
    queries = a.read().queries(10)
    assert queries is not None
    (statement,) = queries.by_fingerprint
    assert (statement.count, statement.errors, statement.slow, statement.rows) == (100, 1, 10, 100)
    assert statement.total_ms == pytest.approx(90 * 1 + 10 * 500)
    # Percentiles from the summed buckets (within a bucket), not from either process's own.
    assert statement.p50_ms == pytest.approx(1.0, rel=0.05)
    assert statement.p95_ms == pytest.approx(500.0, rel=0.05)
    assert (queries.count, queries.slow) == (100, 10)
    assert queries.slow_pct == pytest.approx(10.0)


class _Levels(msgspec.Struct):
    connections: Annotated[int, GaugeField("Connections open.")]
    threshold_ms: Annotated[float, GaugeField("A shared setting.", mode="max")]


def test_gauges_combine_by_their_declared_mode(redis_client: redis.Redis, namespace: str) -> None:
    fleets = []
    for connections, threshold in ((3, 100.0), (5, 250.0)):
        fleet = _fleet(redis_client, namespace)
        collector = StatsCollector("app", lambda c=connections, t=threshold: _Levels(c, t))
        fleet.monitor.registry.register_collector(collector)
        collector.refresh()
        fleet.publish()
        fleets.append(fleet)
    merged = {m.name: m for m in fleets[0].read().metrics}
    assert merged["app_connections"].samples[0].value == 8  # per-process levels add up
    assert merged["app_threshold_ms"].samples[0].value == 250.0


def test_a_dead_process_leaves_the_live_list_and_its_totals_stay_once(
    pair: tuple[Fleet, Fleet], redis_client: redis.Redis, namespace: str
) -> None:
    a, b = pair
    _serve(a, 5, 0.01)
    _serve(b, 8, 0.01)
    b.publish()
    redis_client.delete(b.alive_key(b.process))  # as when its liveness key expires
    view = a.read()
    assert [p.process for p in view.processes] == [a.process]
    assert view.requests().requests == 13
    assert b.process in {f.decode() for f in redis_client.hkeys(a.hash_key)}  # kept a while
    # Once gone for longer than retire_after, it is folded into the retired totals, once:
    # later reads do not add it again.
    reader = Fleet(a.monitor, redis_client, namespace=namespace, retire_after=0)
    for _ in range(3):
        view = reader.read()
        assert [p.process for p in view.processes] == [reader.process]
        assert view.requests().requests == 13
        assert sum(p.requests for p in view.trend_points()) == 13
    fields = {f.decode() for f in redis_client.hkeys(a.hash_key)}
    assert RETIRED in fields and b.process not in fields


def test_a_stalled_process_that_publishes_again_is_counted_once(
    pair: tuple[Fleet, Fleet], redis_client: redis.Redis
) -> None:
    a, b = pair
    _serve(b, 8, 0.01)
    b.publish()
    redis_client.delete(b.alive_key(b.process))  # its thread stalled past the liveness bound
    assert a.read().requests().requests == 8
    _serve(b, 2, 0.01)
    b.publish()  # back: its own numbers replace what it published before
    view = a.read()
    assert view.requests().requests == 10
    assert {p.process for p in view.processes} == {a.process, b.process}


def test_a_stopped_process_is_retired_with_its_last_numbers(
    pair: tuple[Fleet, Fleet], redis_client: redis.Redis
) -> None:
    a, b = pair
    b.start()
    deadline = time.monotonic() + 30
    while b.process not in {p.process for p in a.read().processes}:
        assert time.monotonic() < deadline, "b never published"
        time.sleep(0.05)
    _serve(b, 4, 0.01)  # after its last periodic publish: stop() publishes once more
    b.stop()
    view = a.read()
    assert [p.process for p in view.processes] == [a.process]
    assert view.requests().requests == 4


def test_a_process_neither_publishing_nor_seeing_others_answers_for_itself(
    redis_client: redis.Redis, namespace: str
) -> None:
    # Issue 25: a kit never started (no fleet publishing) answered "fleet" with its own
    # numbers; each worker then claimed to be the fleet.
    fleet = _fleet(redis_client, namespace)
    _serve(fleet, 3, 0.01)
    view = fleet.read()
    assert (view.scope, view.requests().requests) == ("process", 3)
    fleet.start()  # publishing: a fleet (of one process so far)
    try:
        assert fleet.read().scope == "fleet"
    finally:
        fleet.stop()
    # Stopped, what it published is its own numbers again: not a fleet's.
    assert fleet.read().scope == "process"


def test_what_a_process_publishes_is_bounded(redis_client: redis.Redis, namespace: str) -> None:
    stats = QueryStats(max_fingerprints=1000)
    for n in range(3 * TOP_STATEMENTS):
        stats.record(f"SELECT * FROM table_{n}", 0.001 * (n + 1))
    fleet = _fleet(redis_client, namespace, stats)
    state = fleet.state()
    assert state.queries is not None and len(state.queries.statements) == TOP_STATEMENTS
    assert state.queries.count == 3 * TOP_STATEMENTS  # the totals still count everything
    assert min(s.total for s in state.queries.statements) > 0.001 * 2 * TOP_STATEMENTS
    assert len(state.trends) <= TREND_BUCKETS


def test_a_read_is_two_round_trips_however_many_processes(private_redis: PrivateRedis) -> None:
    client = redis.Redis.from_url(private_redis.url)  # a server of its own: exact counts
    fleets = [_fleet(client, "fleet") for _ in range(16)]
    for fleet in fleets:
        fleet.publish()
    before = _reads(client)
    view = fleets[0].read()
    assert len(view.processes) == 16
    assert _reads(client) - before == 2  # one HGETALL, one MGET of the liveness keys
    client.close()


def _reads(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("hgetall", "mget")
    )


def test_without_redis_the_view_is_this_process_alone() -> None:
    fleet = Fleet(PerformanceMonitor(), None, namespace="unused")
    _serve(fleet, 2, 0.01)
    view = fleet.read()
    assert view.scope == "process" and view.requests().requests == 2
    fleet.start()  # nothing to publish to: no thread
    assert fleet._publisher.thread is None


def test_bad_settings_name_what_was_wrong() -> None:
    with pytest.raises(Exception, match="interval"):
        Fleet(PerformanceMonitor(), None, namespace="x", interval=0)
    with pytest.raises(Exception, match="ttl"):
        Fleet(PerformanceMonitor(), None, namespace="x", interval=2, ttl=1)
    with pytest.raises(Exception, match="namespace"):
        Fleet(PerformanceMonitor(), None, namespace="")


# perfkit's bucket layout before the 50 µs one: Prometheus' default latency buckets.
OLD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def test_a_process_on_the_old_bucket_layout_is_merged_not_fatal(
    redis_client: redis.Redis, namespace: str
) -> None:
    # A rolling deploy: one process still publishes the old layout (14 request buckets,
    # 15-count trend buckets, statement buckets of the 10 µs layout).
    old_stats, new_stats = QueryStats(), QueryStats()
    old_export = lambda: msgspec.structs.replace(  # noqa: E731
        export_query_stats(old_stats, TOP_STATEMENTS), bucket_floor=10e-6
    )
    old = Fleet(PerformanceMonitor(buckets=OLD_BUCKETS), redis_client, namespace=namespace,
                interval=0.5, queries=old_export, retire_after=0)  # fmt: skip
    new = _fleet(redis_client, namespace, new_stats, retire_after=0)
    later = _fleet(redis_client, namespace, retire_after=0)
    try:
        _serve(old, 10, 0.0002)
        _serve(new, 900, 0.0002)
        _serve(new, 100, 0.0015)
        for _ in range(5):
            old_stats.record("SELECT 1", 0.0002)
            new_stats.record("SELECT 1", 0.0015)
        old.publish()
        view = new.read()
        assert len(view.processes) == 2
        summary = view.requests()
        # Every request counts; the old process's are moved up to the bucket holding their
        # old bound (5 ms), never down, and the p95 still reads the 1.5 ms ones.
        assert summary.requests == 1010
        assert summary.p95_ms == pytest.approx(1.5, rel=0.10)
        duration = next(m for m in view.metrics if m.name == "http_request_duration_seconds")
        assert duration.bounds == new.monitor.requests.duration.bounds
        # The minute's p95 from the layout of this process; the old one's counts are left out.
        point = view.trend_points()[-1]
        assert point.requests == 1010 and point.p95_ms == pytest.approx(1.5, rel=0.10)
        statement = view.queries(10).by_fingerprint[0]  # type: ignore[union-attr]
        assert statement.count == 10 and statement.p95_ms == pytest.approx(1.5, rel=0.10)

        # Retired with the old layout, then a process of the new one retires after it: the
        # folded totals move onto the finer layout and keep every count.
        redis_client.delete(old.alive_key(old.process))  # it exited
        assert new.read().requests().requests == 1010
        assert redis_client.hexists(new.hash_key, RETIRED)
        _serve(later, 5, 0.0002)
        later.publish()
        redis_client.delete(later.alive_key(later.process))
        view = new.read()
        assert view.requests().requests == 1015
        assert view.retired is not None
        retired = next(m for m in view.retired.metrics if m.name == duration.name)
        assert retired.bounds == duration.bounds
    finally:
        new.stop()
