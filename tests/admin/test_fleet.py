"""The admin routes answer with the fleet's numbers (issue 18): another process's published
state is merged in, whichever adapter answers; with Redis away, this process's own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec
import redis
import structlog

from perfkit import Perfkit
from perfkit.cache import AsyncRedisService
from perfkit.metrics import MetricSnapshot, PerformanceMonitor, Sample
from perfkit.metrics.fleet import Fleet, FleetProcess, FleetView, ProcessState
from perfkit.queries import QueryStats
from perfkit.queries._merge import export_query_stats
from tests._servers import PrivateRedis
from tests.admin.conftest import AUTH, Client, asgi_client
from tests.metrics.test_registry import families


def _other_process(kit: Perfkit, requests: int, statements: int) -> Fleet:
    """A second process of the same app: its own monitor and statements, published."""
    stats = QueryStats()
    for n in range(statements):
        stats.record(f"SELECT name FROM items WHERE id = {n}", 0.002, rows=1)
    other = Fleet(PerformanceMonitor(), kit.fleet.client, namespace="admintest",
                  queries=lambda: export_query_stats(stats, 100))  # fmt: skip
    for n in range(requests):
        scope = {"type": "http", "path": f"/p/{n}"}
        other.monitor.requests.begin(scope)
        other.monitor.requests.end(scope, "GET", "/p/1", 200, 0.01, route="/p/{id}")
    other.publish()
    return other


def _serve(kit: Perfkit, count: int) -> None:
    for n in range(count):
        scope = {"type": "http", "path": f"/here/{n}"}
        kit.monitor.requests.begin(scope)
        kit.monitor.requests.end(scope, "GET", "/here/1", 200, 0.01, route="/here/{id}")


def test_every_listed_route_answers_for_the_fleet(
    make_kit: Callable[..., Perfkit], in_process: Callable[[Perfkit], Client]
) -> None:
    kit = make_kit()
    _serve(kit, 3)
    other = _other_process(kit, requests=5, statements=4)
    client = in_process(kit)
    summary = client.get("summary", headers=AUTH).json()
    assert (summary["scope"], summary["processes"]) == ("fleet", 2)
    assert summary["requests"]["requests"] == 8
    dashboard = client.get("dashboard", headers=AUTH).json()
    assert dashboard["api"]["requests"] == 8
    assert {p["process"] for p in dashboard["processes"]} == {kit.fleet.process, other.process}
    assert sum(p["requests"] for p in dashboard["processes"]) == 8
    assert dashboard["database"]["queries"]["count"] == 4
    realtime = client.get("realtime", headers=AUTH).json()
    assert realtime["scope"] == "fleet" and len(realtime["processes"]) == 2
    trends = client.get("trends", headers=AUTH).json()
    assert sum(p["requests"] for p in trends["points"]) == 8
    queries = client.get("queries", headers=AUTH).json()
    assert queries["scope"] == "fleet" and queries["queries"]["count"] == 4
    metrics = client.get("metrics", headers=AUTH).text
    assert 'http_requests_total{method="GET",route="/p/{id}",status_class="2xx"} 5' in metrics
    assert 'http_requests_total{method="GET",route="/here/{id}",status_class="2xx"} 3' in metrics


def test_with_redis_away_the_routes_answer_for_this_process(
    make_kit: Callable[..., Perfkit], private_redis: PrivateRedis
) -> None:
    kit = make_kit(jobs=None)
    _serve(kit, 2)
    _other_process(kit, requests=5, statements=0)
    private_redis.stop()
    client = asgi_client(kit.asgi_admin())
    summary = client.get("summary", headers=AUTH)
    assert summary.status_code == 200
    assert summary.json()["scope"] == "process"
    assert summary.json()["requests"]["requests"] == 2
    dashboard = client.get("dashboard", headers=AUTH).json()
    assert [p["process"] for p in dashboard["processes"]] == [kit.fleet.process]


def test_the_cache_route_shows_which_process_warmed_last(
    make_kit: Callable[..., Perfkit], in_process: Callable[[Perfkit], Client]
) -> None:
    kit = make_kit()
    assert kit.warmer is not None and kit.warmer.lease is not None
    client = in_process(kit)
    assert client.get("cache", headers=AUTH).json()["fleet_warm"] is None
    kit.warmer.lease.record(kit.warmer.warm(["products"]))
    last = client.get("cache", headers=AUTH).json()["fleet_warm"]
    assert last["process"] == kit.fleet.process
    assert [r["name"] for r in last["results"]] == ["products"]


def test_a_kit_with_an_async_cache_publishes_through_a_sync_client_of_its_own(
    redis_url: str, namespace: str
) -> None:
    cache = AsyncRedisService(redis_url, namespace=namespace)
    kit = Perfkit(cache=cache, token="t" * 16)
    client = kit.fleet.client
    assert isinstance(client, redis.Redis) and client is not cache.client
    _serve(kit, 4)
    probe = redis.Redis.from_url(redis_url)

    async def run() -> FleetView:
        try:
            async with kit:
                deadline = time.monotonic() + 30
                while not probe.hexists(kit.fleet.hash_key, kit.fleet.process):
                    assert time.monotonic() < deadline, "the kit never published"
                    await asyncio.sleep(0.05)
                reader = Fleet(
                    PerformanceMonitor(), redis.Redis.from_url(redis_url), namespace=namespace
                )
                return reader.read()
        finally:
            await cache.close()

    view = asyncio.run(run())
    probe.close()
    assert kit.fleet.process in {p.process for p in view.processes}
    assert view.requests().requests == 4


def _foreign_entries(fleet: Fleet, client: redis.Redis) -> int:
    """Write into the fleet hash what perfkit cannot read, each with a liveness key as if
    alive; returns how many entries."""
    state = ProcessState(
        info=FleetProcess(process="odd", host="h", pid=1, started=0.0, uptime_s=1.0,
                          requests=1, in_flight=0, rss_bytes=1, published=time.time()),
        metrics=[MetricSnapshot("odd_seconds", "histogram", "Odd.", (),
                                [Sample((), 1.0, (1, 1))], (1.0,))],
        trends=[], slowest=[],
    )  # fmt: skip
    bad_histogram = msgspec.msgpack.decode(msgspec.msgpack.encode(state))
    bad_histogram[1][0][4][0][2] = [1, 1, 1, 1]  # metrics[0].samples[0].counts
    entries = {
        b"\xff\xfeproc": msgspec.msgpack.encode(1),  # a field name that is not UTF-8
        b"junk": b"\xc1 not msgpack",
        b"shape": msgspec.msgpack.encode({"process": "x"}),
        b"odd": msgspec.msgpack.encode(bad_histogram),  # a bucket too many
        b"retired": b"\x00\x01",
    }
    client.hset(fleet.hash_key, mapping=entries)  # type: ignore[arg-type]
    for field in entries:
        client.set(fleet.alive_key(field.decode(errors="replace")), b"1", ex=300)
    return len(entries)


def test_foreign_bytes_in_the_fleet_hash_are_skipped_counted_and_logged_once(
    make_kit: Callable[..., Perfkit], kit_redis: redis.Redis
) -> None:
    kit = make_kit()
    _serve(kit, 3)
    other = _other_process(kit, requests=5, statements=4)
    foreign = _foreign_entries(kit.fleet, kit_redis)
    with structlog.testing.capture_logs() as logs:
        view = kit.fleet.read()
        assert {p.process for p in view.processes} == {kit.fleet.process, other.process}
        assert view.requests().requests == 8
        client = asgi_client(kit.asgi_admin())
        answers = {
            route: client.get(route, headers=AUTH)
            for route in ("summary", "dashboard", "realtime", "trends", "queries", "metrics")
        }
    assert {route: r.status_code for route, r in answers.items()} == dict.fromkeys(answers, 200)
    assert answers["summary"].json()["requests"]["requests"] == 8
    assert answers["summary"].json()["processes"] == 2
    assert len(answers["dashboard"].json()["processes"]) == 2
    assert len(answers["realtime"].json()["processes"]) == 2
    assert sum(p["requests"] for p in answers["trends"].json()["points"]) == 8
    assert answers["queries"].json()["queries"]["count"] == 4
    exposed = families(answers["metrics"].text)
    assert (
        exposed["http_requests"][
            (
                "http_requests_total",
                (("method", "GET"), ("route", "/p/{id}"), ("status_class", "2xx")),
            )
        ]
        == 5
    )
    # Every read skipped each foreign entry; each field was logged once.
    skipped = exposed["perfkit_fleet_entries_skipped"][("perfkit_fleet_entries_skipped_total", ())]
    assert skipped >= foreign * 6
    warned = [e for e in logs if e["event"] == "metrics.fleet_state_unreadable"]
    assert len(warned) == foreign
