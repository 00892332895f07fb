# Generated from test_explain_async.py by tools/async_to_sync.py: do not edit.
"""Plans of slow statements, captured on real PostgreSQL: once per fingerprint, within the
budget, never ANALYZE of a write, never a parameter value kept.

Written once, for both pools: ``test_explain.py`` is generated from ``test_explain_async.py``
(tools/async_to_sync.py). What needs no pool (which statements are reads, the explain
session's own refusal) is in ``test_explain_session.py``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import msgspec
import psycopg
import pytest
import structlog

from perfkit.metrics import Thresholds
from perfkit.metrics.recommendations import recommend
from perfkit.queries import ExplainSettings, QueryStats, TimedPool
from perfkit.queries._merge import export_query_stats, merge_query_exports, query_snapshot
from perfkit.queries._plan import PlanNode
from tests.queries.conftest import BIG_ROWS, SECRET


def wait_until(condition: Callable[[], bool]) -> None:
    """Until ``condition()`` holds, for 20 s at most; the async pool's explainer is a task,
    so the loop is left free between looks."""
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def stats() -> QueryStats:
    """Every statement is slow (threshold 0), so every one is offered for a plan."""
    return QueryStats(slow_query_ms=0)


def explaining_pool(url: str, stats: QueryStats, **settings: object) -> TimedPool:  # type: ignore[arg-type]
    return TimedPool(
        url, query_stats=stats, min_size=1, max_size=2, explain=ExplainSettings(**settings)
    )


def nodes(node: PlanNode) -> Iterator[PlanNode]:
    yield node
    for child in node.children:
        yield from nodes(child)


def settled(stats: QueryStats, explains: int) -> Callable[[], bool]:
    """True once ``explains`` EXPLAINs have ended (run or failed)."""
    sampler = stats.plans
    assert sampler is not None

    def check() -> bool:
        counts = sampler.stats()
        return counts.explains + counts.failures >= explains

    return check


def test_a_slow_fingerprint_gets_exactly_one_plan(big: str, stats: QueryStats) -> None:
    with explaining_pool(big, stats, per_minute=100) as pool:
        for i in range(30):
            pool.fetch("SELECT id FROM big WHERE email = %s", (f"user{i}@example.com",))
        wait_until(settled(stats, 1))
        for i in range(30):  # slow again, inside the interval: no second EXPLAIN
            pool.fetch("SELECT id FROM big WHERE email = %s", (f"user{i}@example.com",))
        time.sleep(0.3)
        assert stats.plans is not None
        counts = stats.plans.stats()
        assert (counts.explains, counts.failures, counts.plans) == (1, 0, 1)
        (plan,) = pool.stats().queries.plans
    assert plan.fingerprint == "SELECT id FROM big WHERE email = ?"
    assert not plan.analyzed and plan.captures == 1
    scans = [n for n in nodes(plan.root) if n.node == "Seq Scan"]
    assert scans and scans[0].relation is not None and scans[0].relation.endswith(".big")
    assert scans[0].filter is not None and "email" in scans[0].filter
    assert scans[0].table_rows == BIG_ROWS
    assert [n for n in nodes(plan.root) if n.costliest] == [scans[0]]


def test_no_parameter_value_is_stored_or_logged(big: str, stats: QueryStats) -> None:
    with structlog.testing.capture_logs() as logs, explaining_pool(big, stats) as pool:
        pool.fetch("SELECT id, n FROM big WHERE email = %s AND n > %s", (SECRET, 987654))
        # One that the EXPLAIN cannot run: its error would quote the value.
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            pool.fetch("SELECT id FROM big WHERE id = %s::int", (SECRET,))
        pool.fetch("SELECT count(*) FROM big WHERE email LIKE %s", (SECRET + "%",))
        wait_until(settled(stats, 2))
        report = pool.stats()
    (read,) = [p for p in report.queries.plans if "n >" in p.fingerprint]
    assert any(n.filter and "?" in n.filter for n in nodes(read.root))
    merged = query_snapshot(merge_query_exports([export_query_stats(stats, 100)], 100))
    assert merged.plans  # what the admin's queries route answers
    for shown in (msgspec.json.encode(report), msgspec.json.encode(merged), repr(logs)):
        text = shown if isinstance(shown, str) else shown.decode()
        assert SECRET not in text and "987654" not in text


def test_a_write_is_never_analyzed(big: str, stats: QueryStats) -> None:
    writes = [
        ("UPDATE counter SET n = n + 1 WHERE id = %s", (1,)),
        ("INSERT INTO log (note) VALUES (%s)", ("inserted",)),
        ("DELETE FROM log WHERE id IN (SELECT min(id) FROM log WHERE note <> %s)", ("x",)),
        (
            "WITH gone AS (DELETE FROM log WHERE id IN (SELECT max(id) FROM log WHERE id > %s)"
            + " RETURNING id) SELECT count(*) FROM gone",
            (0,),
        ),
        ("SELECT * FROM big WHERE id = %s FOR UPDATE", (5,)),
    ]
    with explaining_pool(big, stats, analyze=True, per_minute=100) as pool:
        for statement, params in writes:
            pool.fetch(statement, params)
        pool.fetch("SELECT count(*) FROM big WHERE n = %s", (3,))
        wait_until(settled(stats, len(writes) + 1))
        plans = {plan.fingerprint: plan for plan in pool.stats().queries.plans}
    assert stats.plans is not None and stats.plans.stats().failures == 0
    assert len(plans) == len(writes) + 1
    read = plans.pop("SELECT count(*) FROM big WHERE n = ?")
    assert read.analyzed and read.root.actual_ms is not None  # ANALYZE is on, for reads
    assert not any(plan.analyzed for plan in plans.values())
    assert all(n.actual_ms is None for p in plans.values() for n in nodes(p.root))
    with psycopg.connect(big) as conn:
        # Each write ran once, by the app: 10 rows + 1 inserted - 2 deleted, counter at 1.
        assert conn.execute("SELECT n FROM counter").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM log").fetchone() == (9,)


def test_the_budget_holds(big: str, stats: QueryStats) -> None:
    with explaining_pool(big, stats, per_minute=3) as pool:
        for i in range(10):  # ten fingerprints, all slow
            pool.fetch(f"SELECT id FROM big AS b{i} WHERE n = %s LIMIT 1", (i % 7,))
        wait_until(settled(stats, 3))
        time.sleep(0.3)
        assert stats.plans is not None
        counts = stats.plans.stats()
    assert (counts.explains, counts.over_budget) == (3, 7)


def test_the_recommendation_names_the_filter_column(big: str, stats: QueryStats) -> None:
    with explaining_pool(big, stats) as pool:
        pool.fetch("SELECT id FROM big WHERE email = %s", ("user5@example.com",))
        pool.fetch("SELECT id FROM big WHERE id = %s", (5,))  # by primary key: no hint
        wait_until(settled(stats, 2))
        plans = pool.stats().queries.plans
    findings = [f for f in recommend(plans=plans) if f.metric == "seq_scan"]
    (finding,) = findings
    assert finding.value == BIG_ROWS
    assert "big (email)" in finding.advice and "CREATE INDEX ON" in finding.advice
    lenient = Thresholds(seq_scan_rows=10**6)
    assert not [f for f in recommend(plans=plans, thresholds=lenient) if f.metric == "seq_scan"]


def test_fleet_merge_keeps_the_newest_plan_per_fingerprint(big: str, stats: QueryStats) -> None:
    with explaining_pool(big, stats) as pool:
        pool.fetch("SELECT id FROM big WHERE email = %s", ("user1@example.com",))
        wait_until(settled(stats, 1))
    export = export_query_stats(stats, 100)
    (plan,) = export.plans
    older = msgspec.structs.replace(plan, captured_at=plan.captured_at - 60, captures=7)
    other = msgspec.structs.replace(export, plans=[older])
    wire = msgspec.msgpack.decode(msgspec.msgpack.encode(other), type=type(export))
    merged = merge_query_exports([export, wire], 10)
    assert merged.plans == [plan]


def test_after_the_interval_a_changed_plan_is_seen(big: str, stats: QueryStats) -> None:
    query = "SELECT id FROM big WHERE email = %s"
    with explaining_pool(big, stats, interval=0.5) as pool:
        pool.fetch(query, ("user1@example.com",))
        wait_until(settled(stats, 1))
        with psycopg.connect(big, autocommit=True) as conn:
            conn.execute("CREATE INDEX big_email ON big (email)")
        pool.fetch(query, ("user2@example.com",))  # within the interval: not explained
        time.sleep(0.6)
        pool.fetch(query, ("user3@example.com",))
        wait_until(settled(stats, 2))
        (plan,) = pool.stats().queries.plans
    assert (plan.captures, plan.shape_changes) == (2, 1)
    assert [n.index for n in nodes(plan.root) if n.index] == ["big_email"]
    hints = recommend(plans=[plan], thresholds=Thresholds(seq_scan_rows=1))
    assert all(f.metric != "seq_scan" for f in hints)  # the index is there now


def test_from_env_reads_the_explain_settings(big: str) -> None:
    environ = {
        "DATABASE_URL": big,
        "DB_EXPLAIN": "1",
        "DB_EXPLAIN_PER_MINUTE": "2",
        "DB_EXPLAIN_ANALYZE": "true",
        "DB_POOL_MIN": "0",
    }
    with TimedPool.from_env(environ) as pool:
        sampler = pool.query_stats.plans
        assert pool.explainer is not None and sampler is not None
        assert (sampler.settings.per_minute, sampler.settings.analyze) == (2, True)
    with TimedPool.from_env({"DATABASE_URL": big, "DB_POOL_MIN": "0"}) as pool:
        assert pool.explainer is None and pool.query_stats.plans is None
