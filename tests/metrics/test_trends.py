"""Trends, recommendations, memory limits and the periodic performance log."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from structlog.testing import capture_logs

from perfkit.metrics import PerformanceLog, PerformanceMonitor, Thresholds, Trends
from perfkit.metrics.recommendations import recommend
from perfkit.metrics.system import memory_limit, resident_memory
from perfkit.metrics.trends import estimate_quantile


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_trends_bucket_requests_per_minute() -> None:
    clock = Clock(600.0)
    trends = Trends(clock=clock)
    for seconds in (0.01, 0.02, 0.03, 2.0):
        trends.record(seconds, error=seconds > 1, slow=seconds > 1)
    clock.now += 180  # two quiet minutes, then one more request
    trends.record(0.1)
    trends.sample(cache_hit_rate=0.9, queue_depth=4)

    points = trends.points()
    assert [p.start for p in points] == [600, 660, 720, 780]
    first, quiet, _, last = points
    assert (first.requests, first.errors, first.slow) == (4, 1, 1)
    assert first.avg_ms == pytest.approx(515.0)
    assert first.p95_ms is not None and 1000 < first.p95_ms <= 2500
    assert (quiet.requests, quiet.avg_ms, quiet.p95_ms) == (0, None, None)
    assert (last.requests, last.cache_hit_rate, last.queue_depth) == (1, 0.9, 4)
    assert [p.start for p in trends.points(last=2)] == [720, 780]


def test_trends_history_is_bounded() -> None:
    clock = Clock(0.0)
    trends = Trends(history=5, clock=clock)
    for minute in range(50):
        clock.now = minute * 60
        trends.record(0.01)
    points = trends.points()
    assert len(points) == 5
    assert points[0].start == 45 * 60


def test_estimate_quantile() -> None:
    bounds = (0.1, 0.2, 0.5)
    assert estimate_quantile(bounds, [0, 0, 0, 0], 0.95) is None
    assert estimate_quantile(bounds, [10, 0, 0, 0], 0.5) == pytest.approx(0.05)
    assert estimate_quantile(bounds, [0, 10, 0, 0], 0.5) == pytest.approx(0.15)
    assert estimate_quantile(bounds, [0, 0, 0, 3], 0.95) == 0.5  # +Inf: the last bound


def test_recommendations_follow_the_seed_thresholds() -> None:
    assert recommend(avg_response_ms=150, cache_hit_rate=0.85, slow_query_pct=5,
                     memory_ratio=0.5, failed_jobs=0) == []  # fmt: skip
    findings = {
        f.metric: f
        for f in recommend(
            avg_response_ms=250,
            cache_hit_rate=0.7,
            slow_query_pct=25,
            memory_ratio=0.92,
            failed_jobs=3,
        )
    }
    assert {m: (f.value, f.threshold, f.severity) for m, f in findings.items()} == {
        "avg_response_ms": (250, 200, "warning"),
        "cache_hit_rate": (0.7, 0.8, "warning"),
        "slow_query_pct": (25, 10, "critical"),
        "memory_ratio": (0.92, 0.9, "warning"),
        "failed_jobs": (3, 0, "critical"),
    }
    assert all(f.advice.endswith(".") for f in findings.values())


def test_thresholds_are_configurable_and_validated() -> None:
    relaxed = Thresholds(avg_response_ms=500, failed_jobs=5)
    assert recommend(avg_response_ms=250, failed_jobs=3, thresholds=relaxed) == []
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"cache_hit_rate": 1.5}, Thresholds)


def test_memory_limit_from_cgroup_v2_v1_or_configured(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text("536870912\n")
    assert memory_limit(cgroup_root=str(v2)) == 512 * 2**20
    (v2 / "memory.max").write_text("max\n")
    assert memory_limit(1234, cgroup_root=str(v2)) == 1234
    v1 = tmp_path / "v1" / "memory"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text("268435456\n")
    assert memory_limit(cgroup_root=str(tmp_path / "v1")) == 256 * 2**20
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "unlimited"
    assert memory_limit(cgroup_root=str(tmp_path / "v1")) is None
    assert memory_limit(99, cgroup_root=str(tmp_path / "none")) == 99


def test_memory_ratio_finding_with_a_configured_limit() -> None:
    monitor = PerformanceMonitor(memory_limit=resident_memory())
    if monitor.report().memory_limit != resident_memory():
        pytest.skip("a cgroup limit applies here")
    findings = {f.metric: f for f in monitor.recommendations()}
    assert findings["memory_ratio"].severity == "critical"


def test_importing_starts_no_thread() -> None:
    code = "import threading, perfkit.metrics; print(threading.active_count())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_performance_log_emits_events_until_stopped() -> None:
    monitor = PerformanceMonitor()
    for seconds in (0.1, 0.3, 1.5):
        monitor.requests.end({}, "GET", "/x", 200, seconds)
    log = PerformanceLog(monitor, interval=0.1, sample_interval=0.05)
    with capture_logs() as events:
        log.start()
        thread = log._thread
        deadline = time.monotonic() + 30
        while len([e for e in events if e["event"] == "performance"]) < 2:
            assert time.monotonic() < deadline, "no performance events"
            time.sleep(0.02)
        log.stop()
        assert not log.running
        assert thread is not None and not thread.is_alive()  # stopped: no event after this
    first, second = [e for e in events if e["event"] == "performance"][:2]
    assert first["requests"] == 3 and first["total_requests"] == 3
    assert first["avg_response_ms"] == pytest.approx(633.333, abs=0.01)
    assert first["slow_request_pct"] == pytest.approx(33.33)
    assert first["memory_rss_bytes"] > 0
    assert first["cache_hit_rate"] is None
    assert second["requests"] == 0 and second["avg_response_ms"] is None
    assert second["total_requests"] == 3
