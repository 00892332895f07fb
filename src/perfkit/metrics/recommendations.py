"""Findings from the seed's alert thresholds, each threshold configurable.

A finding is made only when a value is known and beyond its threshold. It is
``critical`` when far beyond (average response at least twice the threshold, hit rate at
most half of it, slow queries at least twice, memory past halfway from the threshold to
the limit, any failed job), else ``warning``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

if TYPE_CHECKING:  # perfkit.queries (and psycopg) is not imported with the metrics
    from perfkit.queries import NPlusOne
    from perfkit.queries._plan import QueryPlan

__all__ = ["Finding", "Thresholds", "recommend", "recommend_n_plus_one"]

Severity = Literal["warning", "critical"]
_Test = Callable[[float, float], bool]
Ratio = Annotated[float, msgspec.Meta(ge=0, le=1)]


class Thresholds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where a value becomes a finding (defaults from the seed guide)."""

    avg_response_ms: Annotated[float, msgspec.Meta(gt=0)] = 200.0
    cache_hit_rate: Ratio = 0.8
    slow_query_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] = 10.0
    memory_ratio: Ratio = 0.9
    failed_jobs: Annotated[int, msgspec.Meta(ge=0)] = 0
    # A sequential scan with a filter over a table this big (rows) is worth an index hint.
    seq_scan_rows: Annotated[int, msgspec.Meta(ge=0)] = 10_000


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One metric beyond its threshold, with a sentence of advice."""

    metric: str
    value: float
    threshold: float
    severity: Severity
    advice: str


def recommend(
    *,
    avg_response_ms: float | None = None,
    cache_hit_rate: float | None = None,
    slow_query_pct: float | None = None,
    memory_ratio: float | None = None,
    failed_jobs: int | None = None,
    thresholds: Thresholds | None = None,
    plans: Sequence[QueryPlan] = (),
) -> list[Finding]:
    """The findings for the values given (``None``: not known, no finding), and an index
    hint for each filtered sequential scan of a big table in the slow statements' ``plans``."""
    t = thresholds or Thresholds()
    # (metric, value, threshold, beyond it?, critical?, advice)
    checks: list[tuple[str, float | None, float, _Test, _Test, str]] = [
        ("avg_response_ms", avg_response_ms, t.avg_response_ms,
         lambda v, x: v > x, lambda v, x: v >= 2 * x,
         "Average response time is high: look at the slowest routes and queries, and "
         "cache what they compute."),
        ("cache_hit_rate", cache_hit_rate, t.cache_hit_rate,
         lambda v, x: v < x, lambda v, x: v <= x / 2,
         "Cache hit rate is low: check TTLs and invalidation, and warm the keys read most."),
        ("slow_query_pct", slow_query_pct, t.slow_query_pct,
         lambda v, x: v > x, lambda v, x: v >= 2 * x,
         "Too many slow queries: EXPLAIN the slowest fingerprints and add the missing "
         "indexes."),
        ("memory_ratio", memory_ratio, t.memory_ratio,
         lambda v, x: v > x, lambda v, x: v >= (1 + x) / 2,
         "Memory is close to its limit: look for unbounded caches or leaks, or raise the "
         "limit."),
        ("failed_jobs", failed_jobs, t.failed_jobs,
         lambda v, x: v > x, lambda v, x: True,
         "Jobs have failed: investigate their errors now, then retry or discard them."),
    ]  # fmt: skip
    findings = []
    for metric, value, threshold, beyond, critical, advice in checks:
        if value is None or not beyond(value, threshold):
            continue
        findings.append(
            Finding(
                metric=metric,
                value=float(value),
                threshold=float(threshold),
                severity="critical" if critical(value, threshold) else "warning",
                advice=advice,
            )
        )
    return findings + index_hints(plans, t.seq_scan_rows)


# Index hints given at most (the biggest tables first).
MAX_INDEX_HINTS = 5


def index_hints(plans: Sequence[QueryPlan], min_rows: int) -> list[Finding]:
    """A finding per sequential scan, with a filter, of a table of at least ``min_rows``
    rows in ``plans``, naming the filter's columns."""
    if not plans:  # no statement plans: no need to import perfkit.queries to say so
        return []
    from perfkit.queries._plan import seq_scans

    findings = []
    for scan in seq_scans(plans, min_rows)[:MAX_INDEX_HINTS]:
        columns = ", ".join(scan.columns)
        findings.append(
            Finding(
                metric="seq_scan",
                value=float(scan.table_rows),
                threshold=float(min_rows),
                severity="warning",
                advice=(
                    f"Statement {scan.fingerprint_id} reads all of {scan.relation} "
                    f"(~{scan.table_rows:,} rows) to filter on {columns}: an index may "
                    f"help: CREATE INDEX ON {scan.relation} ({columns})."
                ),
            )
        )
    return findings


def recommend_n_plus_one(found: list[NPlusOne], threshold: int, limit: int = 3) -> list[Finding]:
    """One finding per N+1 (the ``limit`` with most statements), naming the route, the
    statement shape and the call site: ``value`` is the most runs in one unit of work,
    ``threshold`` the detector's. Critical from ten times the threshold."""
    findings = []
    for n in sorted(found, key=lambda f: f.statements, reverse=True)[:limit]:
        site = n.call_site
        where = f" at {site.file}:{site.line} ({site.function})" if site is not None else ""
        findings.append(
            Finding(
                metric="n_plus_one",
                value=float(n.max_count),
                threshold=float(threshold),
                severity="critical" if n.max_count >= 10 * threshold else "warning",
                advice=(
                    f"N+1 in {n.route}: `{n.fingerprint}` ran up to {n.max_count} times in "
                    f"one {n.kind}{where}; load the rows in one query (a JOIN or "
                    "WHERE id = ANY(...); select_related/prefetch_related in Django, "
                    "selectinload in SQLAlchemy)."
                ),
            )
        )
    return findings
