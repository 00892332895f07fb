"""``perfkit bench --quick`` end to end: load, the server's phases (caching off, on, on with a
stale window), each with its HTTP floor; table, JSON, chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perfkit.cli import main
from tests._servers import PrivateRedis


@pytest.mark.slow
def test_bench_quick_runs_end_to_end_and_writes_its_json(
    database_url: str,
    private_redis: PrivateRedis,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "results" / "bench.json"
    status = main(
        [
            "bench",
            "--quick",
            "--sf",
            "0.002",
            "--duration",
            "1.5",
            "--warmup",
            "0.5",
            "--concurrency",
            "4",
            "--database-url",
            database_url,
            "--redis-url",
            private_redis.url,
            "--stale-ttl",
            "30",
            "--heavy-ttl",
            "1",
            "--output",
            str(output),
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "caching off (before)" in printed and "caching on (after)" in printed
    assert "caching on + stale window 30 s" in printed
    assert "HTTP floor p50 / p99 (ms)" in printed and "heavy endpoints p99 (ms)" in printed
    assert "target cache_hit_rate" in printed

    results = json.loads(output.read_text())
    before, after, stale = results["before"], results["after"], results["after_stale"]
    assert before["caching"] is False and after["caching"] is True and stale["caching"] is True
    assert after["stale_ttl"] is None and stale["stale_ttl"] == 30
    assert results["config"]["heavy_ttl"] == 1
    for phase in (before, after, stale):
        assert phase["latency"]["requests"] > 20
        assert phase["errors"] == 0
        assert 0 < phase["latency"]["p50_ms"] <= phase["latency"]["p99_ms"]
        assert phase["queries"] > 0
        assert set(phase["by_endpoint"]) >= {"product", "category_leaderboard", "search"}
        # The floor: the same client on the static route of the same server, after the load.
        assert phase["floor"]["requests"] > 20
        assert 0 < phase["floor"]["p50_ms"] <= phase["floor"]["p99_ms"]
        assert phase["floor_throughput_rps"] > 0
    assert before["cache_hit_rate"] is None  # caching off: no lookups at all
    assert after["stale_hits"] == 0  # no window, nothing served stale
    for cached in (after, stale):
        assert 0 < cached["cache_hit_rate"] <= 1
        assert cached["cache_hits"] > cached["cache_misses"]
    assert before["reads_without_sql"] == 0.0  # every uncached read runs its statements
    assert 0 < after["reads_without_sql"] <= 1
    # The cached phase runs far fewer statements per request than the uncached one.
    assert after["queries"] / after["latency"]["requests"] < (
        before["queries"] / before["latency"]["requests"]
    )
    assert set(results["ratios"]["heavy_p50_by_endpoint"]) == set(
        results["config"]["heavy_endpoints"]
    )
    assert set(results["targets"]) == {"heavy_p50_ratio", "cache_hit_rate", "slow_query_pct"}
    assert output.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
