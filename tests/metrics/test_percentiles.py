"""Percentiles that tell fast requests apart: perfkit's bucket layout (50 µs floor, 8 per
doubling) in every part that reports one, checked with durations of known length — 90 % at
0.2 ms, 10 % at 1.5 ms: the p95 must read 1.5 ms within 10 % (it read 4.76 ms with the old
5 ms first bucket)."""

from __future__ import annotations

import re
import time
import types
from collections.abc import Callable, Iterator

import flask
import httpx
import pytest

import perfkit.http.middleware
import perfkit.metrics.requests
from perfkit import Perfkit, Settings
from perfkit._histogram import DEFAULT_BOUNDS, FLOOR, relative_error
from perfkit.cache._stats import CacheCounters
from perfkit.metrics import MetricsRegistry, RequestMetrics, Trends, log_bounds
from perfkit.queries import QueryStats

FAST, SLOW = 0.0002, 0.0015
# 1 000 durations: 900 fast, 100 slow; the 95th is one of the slow ones.
DURATIONS = [FAST] * 900 + [SLOW] * 100
TOKEN = "percentile-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def test_the_layout_is_50_us_to_an_hour_in_buckets_of_9_percent() -> None:
    assert DEFAULT_BOUNDS[0] == FLOOR == 50e-6
    assert len(DEFAULT_BOUNDS) == 209 and DEFAULT_BOUNDS[-1] == pytest.approx(3355.4432)
    assert relative_error(DEFAULT_BOUNDS) == pytest.approx(2 ** (1 / 8) - 1)  # 9.05 %
    # The floor moves: 1 ms, the same resolution, fewer buckets.
    moved = log_bounds(1e-3)
    assert moved[0] == 1e-3 and relative_error(moved) == pytest.approx(2 ** (1 / 8) - 1)


def request_p95(durations: list[float]) -> float | None:
    metrics = RequestMetrics(MetricsRegistry())
    child = metrics.duration.labels("GET", "/items")
    for seconds in durations:
        child.observe(seconds)
    return metrics.summary().p95_ms


def trends_p95(durations: list[float]) -> float | None:
    trends = Trends(clock=lambda: 1_000_000.0)
    for seconds in durations:
        trends.record(seconds)
    return trends.points()[-1].p95_ms


def statement_p95(durations: list[float]) -> float | None:
    stats = QueryStats()
    for seconds in durations:
        stats.record("SELECT name FROM items WHERE id = 1", seconds)
    return stats.stats().by_fingerprint[0].p95_ms


def cache_p95(durations: list[float]) -> float | None:
    counters = CacheCounters()
    for seconds in durations:
        counters.lookup(True, seconds)
    return counters.latency()[1]


@pytest.mark.parametrize(
    "p95_ms",
    [request_p95, trends_p95, statement_p95, cache_p95],
    ids=["requests", "trends", "statements", "cache lookups"],
)
def test_p95_of_known_durations_reads_the_slow_ones(
    p95_ms: Callable[[list[float]], float | None],
) -> None:
    assert p95_ms(DURATIONS) == pytest.approx(SLOW * 1000, rel=0.10)
    # And the fast ones are told apart too: the p50 of all-fast traffic is 0.2 ms, not 4.76.
    assert p95_ms([FAST] * 100) == pytest.approx(FAST * 1000, rel=0.10)


def test_any_quantile_is_within_the_stated_error_wherever_it_falls() -> None:
    bound = relative_error(DEFAULT_BOUNDS)
    # One value repeated: whatever it is, between the floor and the top, it reads back
    # within one bucket's relative width.
    value = FLOOR * 1.0001
    while value < DEFAULT_BOUNDS[-1]:
        metrics = RequestMetrics(MetricsRegistry())
        metrics.duration.labels("GET", "/").observe(value)
        p95 = metrics.summary().p95_ms
        assert p95 is not None and abs(p95 / 1000 - value) <= bound * value, value
        value *= 1.37


class Clock:
    """A perf_counter the view moves on by the request's known duration."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    # The middleware's clock only: every other line of the middleware, Flask and the
    # admin runs as it does in production.
    made = Clock()
    fake = types.SimpleNamespace(perf_counter=made.perf_counter, time=time.time)
    monkeypatch.setattr(perfkit.http.middleware, "time", fake)
    monkeypatch.setattr(perfkit.metrics.requests, "time", fake)
    yield made


def test_p95_through_flask_and_the_admin(clock: Clock) -> None:
    app = flask.Flask("percentiles")

    @app.get("/items/<int:item>")
    def item(item: int) -> dict[str, int]:
        clock.now += SLOW if item % 10 == 0 else FAST
        return {"id": item}

    kit = Perfkit(
        settings=Settings(perfkit_admin_token=TOKEN),
        fleet=False,
        performance_log=False,
        required=(),
    )
    app.wsgi_app = kit.wsgi(app.wsgi_app, compress=False)  # type: ignore[method-assign]
    with app.test_client() as flask_client:
        for i in range(1, 1001):
            assert flask_client.get(f"/items/{i}").status_code == 200

    admin = httpx.Client(transport=httpx.WSGITransport(app=kit.wsgi_admin()), base_url="http://a")
    summary = admin.get("summary", headers=AUTH).json()
    assert summary["requests"]["requests"] == 1000
    assert summary["requests"]["p95_ms"] == pytest.approx(SLOW * 1000, rel=0.10)
    # Prometheus sees one le per doubling: 0.8 ms < 1.5 ms <= 1.6 ms, so histogram_quantile
    # is bounded by them (1.2 ms here), no longer stuck at 4.76 ms.
    text = admin.get("metrics", headers=AUTH).text
    buckets = dict(
        re.findall(r'http_request_duration_seconds_bucket\{[^}]*le="([^"]+)"\} (\S+)', text)
    )
    assert len(buckets) == 28  # 27 doublings from 50 µs, and +Inf
    assert float(buckets["0.0008"]) == 900 and float(buckets["0.0016"]) == 1000
    assert float(buckets["0.0001"]) == 0 and float(buckets["0.0002"]) == 900
