"""Statement statistics of several processes: a bounded export of one
:class:`~perfkit.queries.QueryStats` and the merge of many, by fingerprint id.

An export keeps each fingerprint's raw numbers and its duration buckets (sparse), so the
merged percentiles come from the summed buckets — never from averaged percentiles.
"""

from __future__ import annotations

import heapq

import msgspec

from perfkit.queries._fingerprint import Fingerprint
from perfkit.queries._nplusone import NPlusOne, get_n_plus_one_detector, merge_n_plus_one
from perfkit.queries._plan import QueryPlan, merge_plans
from perfkit.queries._stats import (
    BUCKET_COUNT,
    BUCKET_FLOOR,
    QueryStats,
    QueryStatsSnapshot,
    SlowQuery,
    _Entry,
)

__all__ = [
    "QueryExport",
    "StatementExport",
    "export_query_stats",
    "merge_query_exports",
    "query_snapshot",
]


class StatementExport(msgspec.Struct, array_like=True, frozen=True):
    """One fingerprint's raw numbers (seconds); ``buckets`` maps bucket index -> count."""

    fingerprint: str
    fingerprint_id: str
    count: int
    errors: int
    slow: int
    rows: int
    total: float
    min: float
    max: float
    last_seen: float
    buckets: dict[int, int]


class QueryExport(msgspec.Struct, array_like=True, frozen=True):
    """A process's statement statistics: totals, the top statements and the slowest runs."""

    since: float
    slow_query_ms: float
    count: int
    errors: int
    slow: int
    rows: int
    total: float
    evicted: int
    statements: list[StatementExport]
    slowest: list[SlowQuery]
    # The floor of the bucket layout the statements' bucket indices are in: an export of a
    # perfkit before the 50 µs layout has none, read as its 10 µs layout.
    bucket_floor: float = 10e-6
    plans: list[QueryPlan] = []  # of the statements exported, newest first
    n_plus_one: list[NPlusOne] = []  # the process's N+1 findings (bounded by the detector)


def export_query_stats(stats: QueryStats, top: int) -> QueryExport:
    """``stats`` with its ``top`` statements by total time (bounded however many it tracks)."""
    snapshot = stats.stats(top)  # drains the queued samples, orders by total time
    with stats._lock:
        entries = [stats._entries.get(s.fingerprint_id) for s in snapshot.by_fingerprint]
        statements = [_export(entry) for entry in entries if entry is not None]
    exported = {statement.fingerprint_id for statement in statements}
    return QueryExport(
        since=snapshot.since,
        slow_query_ms=snapshot.slow_query_ms,
        count=snapshot.count,
        errors=snapshot.errors,
        slow=snapshot.slow,
        rows=snapshot.rows,
        total=snapshot.total_ms / 1000,
        evicted=snapshot.fingerprints_evicted,
        statements=statements,
        slowest=snapshot.slowest,
        bucket_floor=BUCKET_FLOOR,
        plans=[p for p in snapshot.plans if p.fingerprint_id in exported],
        n_plus_one=get_n_plus_one_detector().findings(),
    )


def _export(entry: _Entry) -> StatementExport:
    return StatementExport(
        fingerprint=entry.fingerprint.text,
        fingerprint_id=entry.fingerprint.id,
        count=entry.count,
        errors=entry.errors,
        slow=entry.slow,
        rows=entry.rows,
        total=entry.total,
        min=entry.min,
        max=entry.max,
        last_seen=entry.last_seen,
        buckets={i: n for i, n in enumerate(entry.buckets) if n},
    )


def merge_query_exports(exports: list[QueryExport], top: int) -> QueryExport:
    """One export of several: totals summed, statements merged by fingerprint id (counts
    and buckets summed, min/max/last seen combined), cut to the ``top`` by total time.

    An export of another bucket layout (an older perfkit's, during a deploy) adds its
    counts and times but not its buckets: the percentiles come from this layout's."""
    by_id: dict[str, _Entry] = {}
    for export in exports:
        same_layout = export.bucket_floor == BUCKET_FLOOR
        for statement in export.statements:
            entry = by_id.get(statement.fingerprint_id)
            if entry is None:
                by_id[statement.fingerprint_id] = _entry(statement, same_layout)
            else:
                _add(entry, statement, same_layout)
    slowest = heapq.nlargest(
        max((len(e.slowest) for e in exports), default=0),
        (query for export in exports for query in export.slowest),
        key=lambda q: q.duration_ms,
    )
    return QueryExport(
        since=min((e.since for e in exports), default=0.0),
        slow_query_ms=max((e.slow_query_ms for e in exports), default=0.0),
        count=sum(e.count for e in exports),
        errors=sum(e.errors for e in exports),
        slow=sum(e.slow for e in exports),
        rows=sum(e.rows for e in exports),
        total=sum(e.total for e in exports),
        evicted=sum(e.evicted for e in exports),
        statements=[_export(e) for e in heapq.nlargest(top, by_id.values(), key=lambda e: e.total)],
        slowest=slowest,
        bucket_floor=BUCKET_FLOOR,
        plans=merge_plans(
            (p for e in exports for p in e.plans), max((len(e.plans) for e in exports), default=0)
        ),
        n_plus_one=merge_n_plus_one([e.n_plus_one for e in exports], top),
    )


def query_snapshot(export: QueryExport, top: int | None = None) -> QueryStatsSnapshot:
    """The :class:`QueryStatsSnapshot` an export stands for (what the admin answers)."""
    statements = export.statements[:top] if top is not None else export.statements
    return QueryStatsSnapshot.of(
        since=export.since,
        slow_query_ms=export.slow_query_ms,
        count=export.count,
        errors=export.errors,
        slow=export.slow,
        rows=export.rows,
        total=export.total,
        fingerprints_tracked=len(export.statements),
        fingerprints_evicted=export.evicted,
        by_fingerprint=[
            _entry(s, export.bucket_floor == BUCKET_FLOOR).snapshot() for s in statements
        ],
        slowest=export.slowest,
        plans=export.plans,
    )


def _entry(statement: StatementExport, same_layout: bool) -> _Entry:
    """The table entry of an export, so its percentiles are computed the one way (its
    buckets left out when they are in another layout)."""
    entry = _Entry(Fingerprint(statement.fingerprint, statement.fingerprint_id))
    _add(entry, statement, same_layout)  # to an empty entry: its numbers become the export's
    return entry


def _add(entry: _Entry, statement: StatementExport, same_layout: bool) -> None:
    """Add an export's numbers to a table entry (counts and buckets summed, min/max/last
    seen combined; its buckets left out when they are in another layout)."""
    entry.count += statement.count
    entry.errors += statement.errors
    entry.slow += statement.slow
    entry.rows += statement.rows
    entry.total += statement.total
    entry.min = min(entry.min, statement.min)
    entry.max = max(entry.max, statement.max)
    entry.last_seen = max(entry.last_seen, statement.last_seen)
    for index, count in statement.buckets.items() if same_layout else ():
        if 0 <= index < BUCKET_COUNT:
            entry.buckets[index] += count
