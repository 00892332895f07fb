"""The full exposition (requests, cache, pool, jobs) as Prometheus' own tools judge it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
import redis
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from perfkit._stat_kinds import StatKind
from perfkit.cache import RedisService
from perfkit.cache._stats import CacheStats
from perfkit.jobs import JobService
from perfkit.jobs.stats import QueueStats
from perfkit.metrics import PerformanceMonitor
from perfkit.metrics.collectors import declared_kinds
from perfkit.queries import QueryStats, TimedPool
from perfkit.queries._pool_base import PoolStats
from perfkit.queries._stats import QueryStatsSnapshot
from perfkit.settings import Settings
from perfkit.types import Receive, Scope, Send

STATS_STRUCTS: list[type[msgspec.Struct]] = [CacheStats, PoolStats, QueryStatsSnapshot,
                                             QueueStats]  # fmt: skip


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


@pytest.fixture
def full_monitor(
    redis_url: str, namespace: str, database_url: str, redis_client: redis.Redis
) -> Iterator[PerformanceMonitor]:
    """A monitor with real cache, pool and job sources, after some traffic on each."""
    settings = Settings(redis_url=redis_url)
    cache = RedisService(redis_url, namespace=namespace, settings=settings)
    pool = TimedPool(database_url, query_stats=QueryStats(slow_query_ms=0.0), min_size=1,
                     max_size=2, open=True)  # fmt: skip
    try:
        cache.set("a", 1)
        cache.get("a")
        cache.get("b")
        with pool.connection() as conn:
            conn.execute("SELECT 1").fetchall()
        yield PerformanceMonitor(
            cache=cache, pool=pool, jobs=JobService(redis_client), settings=settings
        )
    finally:
        pool.close()
        cache.close()


async def full_exposition(monitor: PerformanceMonitor) -> str:
    app = monitor.asgi(hello, compress=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        assert (await c.get("/hello")).status_code == 200
    return monitor.exposition()


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (apt-get install prometheus; .ci/run does)"
        if os.environ.get("PERFKIT_REQUIRE_SERVICES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def promtool_check(text: str) -> tuple[int, str]:
    """promtool's exit code and complaints about an exposition."""
    result = subprocess.run([promtool(), "check", "metrics"], input=text.encode(),
                            capture_output=True, timeout=60, check=False)  # fmt: skip
    return result.returncode, (result.stdout + result.stderr).decode()


def test_promtool_rejects_what_the_old_names_were() -> None:
    # The judge works: the old exposition's names fail (a test that can fail).
    returncode, problems = promtool_check(
        "# HELP perfkit_cache_avg_latency_ms x\n# TYPE perfkit_cache_avg_latency_ms gauge\n"
        "perfkit_cache_avg_latency_ms 1\n"
    )
    assert returncode != 0 and "abbreviated units" in problems


async def test_promtool_accepts_the_full_exposition(full_monitor: PerformanceMonitor) -> None:
    text = await full_exposition(full_monitor)
    for part in ("http_requests_total", "perfkit_cache_", "perfkit_db_pool_",
                 "perfkit_db_queries_", "perfkit_jobs_"):  # fmt: skip
        assert part in text, f"{part} missing: not a full exposition"
    returncode, problems = promtool_check(text)
    assert returncode == 0, problems
    assert problems.strip() == ""


async def test_prometheus_client_parses_the_full_exposition_with_the_declared_types(
    full_monitor: PerformanceMonitor,
) -> None:
    text = await full_exposition(full_monitor)
    kinds = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert kinds["perfkit_cache_hits"] == "counter"
    assert kinds["perfkit_cache_hit_ratio"] == "gauge"
    assert kinds["perfkit_cache_lookup_duration_mean_seconds"] == "gauge"
    assert kinds["perfkit_db_queries_statements"] == "counter"
    assert kinds["perfkit_db_queries_duration_seconds"] == "counter"
    assert kinds["perfkit_db_pool_acquire_wait_seconds"] == "counter"
    assert kinds["perfkit_jobs_waiting"] == "gauge"
    assert kinds["http_request_duration_seconds"] == "histogram"
    helps = [line for line in text.splitlines() if line.startswith("# HELP")]
    assert not [line for line in helps if "From perfkit" in line]
    assert not [name for name in kinds if "_ms" in name or "_pct" in name or "avg" in name]


@pytest.mark.parametrize("struct", STATS_STRUCTS, ids=lambda s: s.__name__)
def test_every_numeric_stats_field_declares_its_kind(struct: type[msgspec.Struct]) -> None:
    # A new field without a marker would silently be missing from /metrics.
    declared = declared_kinds(struct)
    numeric = [field.name for field in msgspec.structs.fields(struct) if _is_numeric(field.type)]
    assert numeric, struct
    assert sorted(set(numeric) - set(declared)) == []
    assert all(isinstance(kind, StatKind) for kind in declared.values())


def _is_numeric(tp: object) -> bool:
    info = msgspec.inspect.type_info(tp)  # type: ignore[arg-type]
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_is_numeric_info(t) for t in info.types)
    return _is_numeric_info(info)


def _is_numeric_info(info: msgspec.inspect.Type) -> bool:
    return isinstance(info, msgspec.inspect.IntType | msgspec.inspect.FloatType
                      | msgspec.inspect.BoolType)  # fmt: skip


DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "perfkit-dashboard.json"
# What a query holds besides metric names: PromQL functions and keywords.
PROMQL_WORDS = frozenset([
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile",
    "clamp_min", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
    "unless", "bool", "offset",
])  # fmt: skip


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query reads (labels, ranges, functions left out)."""
    query = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(by|without)\s*\([^)]*\)", " ", query)
    query = re.sub(r'"[^"]*"|\b\d+(\.\d+)?(e-?\d+)?\b', " ", query)
    return set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", query)) - PROMQL_WORDS


async def test_every_grafana_query_names_metrics_of_the_exposition(
    full_monitor: PerformanceMonitor,
) -> None:
    text = await full_exposition(full_monitor)
    exposed: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        exposed |= {name + suffix for suffix in suffixes}
    queries = dashboard_queries()
    assert len(queries) >= 15
    read = set().union(*(metric_names(query) for query in queries))
    assert "perfkit_cache_hits_total" in read  # the extraction finds names at all
    assert sorted(read - exposed) == []


def test_promtool_accepts_every_grafana_query(tmp_path: Path) -> None:
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"perfkit:dashboard_query:{i}", "expr": query}
        for i, query in enumerate(dashboard_queries())
    ]}]}  # fmt: skip
    path = tmp_path / "rules.json"  # JSON is YAML: promtool reads it
    path.write_text(json.dumps(rules))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


async def test_openmetrics_exposition_parses_with_the_openmetrics_parser(
    full_monitor: PerformanceMonitor,
) -> None:
    await full_exposition(full_monitor)
    text = full_monitor.exposition(openmetrics=True)
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}
    hits = families["perfkit_cache_hits"]
    assert hits.type == "counter"
    assert [s.name for s in hits.samples] == ["perfkit_cache_hits_total"]
    assert families["http_request_duration_seconds"].type == "histogram"
    assert families["perfkit_jobs_waiting"].type == "gauge"
    assert "# TYPE perfkit_cache_hits counter" in text  # the family, without _total
