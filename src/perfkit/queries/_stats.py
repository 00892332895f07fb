"""Statement statistics by fingerprint, in bounded memory, shareable by several pools.

Durations go into perfkit's bucket layout (``perfkit._histogram``: 8 per doubling, 50 µs
to ~56 min; the percentile is perfkit's one quantile), so it is known to within a bucket
(9.05 %, interpolated) and an entry costs the same however many samples it has seen.
The fingerprint table and the SQL-text → fingerprint cache are both LRUs with a
cap, so memory stays flat however many distinct statements run.
"""

from __future__ import annotations

import heapq
import threading
from bisect import bisect_left
from collections import OrderedDict, deque
from time import perf_counter, time
from typing import Annotated, Any

import msgspec
import structlog
from psycopg import sql

from perfkit import _telemetry, _units
from perfkit._errors import ConfigError
from perfkit._histogram import DEFAULT_BOUNDS, FLOOR, quantile
from perfkit._stat_kinds import CounterField, DurationField, GaugeField
from perfkit.queries._explain_base import ExplainSettings, PlanSampler
from perfkit.queries._fingerprint import Fingerprint
from perfkit.queries._nplusone import tally_for
from perfkit.queries._plan import QueryPlan

__all__ = ["QueryStats", "QueryStatsSnapshot", "SlowQuery", "StatementStats"]

_log = structlog.get_logger("perfkit.queries")

# Bucket i holds durations in (BOUNDS[i - 1], BOUNDS[i]]; the last one everything above.
BOUNDS = DEFAULT_BOUNDS
BUCKET_COUNT = len(BOUNDS) + 1
# Which layout an export's bucket indices are in (an older perfkit's: 10 µs; see _merge).
BUCKET_FLOOR = FLOOR

# Samples queued before they are added up (see QueryStats.record).
BATCH = 64

# record()'s default ``params``: the caller did not give the statement's parameters, so
# it cannot be EXPLAINed (None is a statement without parameters).
NO_PARAMS: Any = object()

# SQL texts longer than this are normalized on every run instead of being cached, so
# that a few huge statements (inlined literals) cannot fill memory.
MAX_CACHED_SQL = 8192


class StatementStats(msgspec.Struct, frozen=True, kw_only=True):
    """What is known about one statement fingerprint. Times in milliseconds."""

    fingerprint: str
    fingerprint_id: str
    count: int
    errors: int
    slow: int
    rows: int
    total_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    last_seen: float


class SlowQuery(msgspec.Struct, frozen=True, kw_only=True):
    """One statement that took at least ``slow_query_ms``; ``at`` is Unix time (seconds)."""

    fingerprint: str
    fingerprint_id: str
    duration_ms: float
    at: float
    pool: str
    failed: bool


class QueryStatsSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """All statement statistics at one moment (see docs/queries.md for every field)."""

    since: Annotated[
        float,
        GaugeField("When the statistics started (unix time).", name="since_timestamp_seconds",
                   mode="min"),
    ]  # fmt: skip
    slow_query_ms: Annotated[
        float, DurationField("The slow statement threshold.", name="slow_threshold_seconds",
                             mode="max"),
    ]  # fmt: skip
    count: Annotated[int, CounterField("Statements run.", name="statements")]
    errors: Annotated[int, CounterField("Statements that raised.")]
    slow: Annotated[int, CounterField("Statements at least the slow threshold long.")]
    slow_pct: Annotated[
        float, GaugeField("Slow statements over all (0..1).", name="slow_ratio", scale=0.01,
                          mode="mean"),
    ]  # fmt: skip
    rows: Annotated[int, CounterField("Rows returned or affected by statements.")]
    total_ms: Annotated[
        float, CounterField("Time spent in statements.", name="duration_seconds", scale=0.001)
    ]
    mean_ms: Annotated[
        float, DurationField("Mean statement time.", name="duration_mean_seconds", mode="mean")
    ]
    fingerprints_tracked: Annotated[int, GaugeField("Statement fingerprints tracked now.")]
    fingerprints_evicted: Annotated[
        int, CounterField("Statement fingerprints dropped to keep the table bounded.")
    ]
    by_fingerprint: list[StatementStats]
    slowest: list[SlowQuery]
    # The plans of slow statements, newest first (docs/queries.md, "Plans of slow statements").
    plans: list[QueryPlan] = []

    @classmethod
    def of(
        cls,
        *,
        since: float,
        slow_query_ms: float,
        count: int,
        errors: int,
        slow: int,
        rows: int,
        total: float,
        fingerprints_tracked: int,
        fingerprints_evicted: int,
        by_fingerprint: list[StatementStats],
        slowest: list[SlowQuery],
        plans: list[QueryPlan] | None = None,
    ) -> QueryStatsSnapshot:
        """The snapshot of these totals (``total`` in seconds), with the derived fields
        (``slow_pct``, ``total_ms``, ``mean_ms``) computed the one way."""
        return cls(
            since=since,
            slow_query_ms=slow_query_ms,
            count=count,
            errors=errors,
            slow=slow,
            slow_pct=100.0 * slow / count if count else 0.0,
            rows=rows,
            total_ms=total * 1000,
            mean_ms=total * 1000 / count if count else 0.0,
            fingerprints_tracked=fingerprints_tracked,
            fingerprints_evicted=fingerprints_evicted,
            by_fingerprint=by_fingerprint,
            slowest=slowest,
            plans=plans or [],
        )


class _Entry:
    __slots__ = (
        "buckets",
        "count",
        "errors",
        "fingerprint",
        "last_seen",
        "max",
        "min",
        "rows",
        "seq",
        "slow",
        "total",
    )

    def __init__(self, fingerprint: Fingerprint) -> None:
        self.fingerprint = fingerprint
        self.count = self.errors = self.slow = self.rows = 0
        self.total = self.max = 0.0
        self.min = float("inf")
        self.last_seen = 0.0
        self.seq = 0  # statement number when last seen: the eviction order
        self.buckets = [0] * BUCKET_COUNT

    def percentile(self, fraction: float) -> float:
        found = quantile(BOUNDS, self.buckets, fraction)
        return self.max if found is None else min(max(found, self.min), self.max)

    def snapshot(self) -> StatementStats:
        return StatementStats(
            fingerprint=self.fingerprint.text,
            fingerprint_id=self.fingerprint.id,
            count=self.count,
            errors=self.errors,
            slow=self.slow,
            rows=self.rows,
            total_ms=self.total * 1000,
            mean_ms=self.total * 1000 / self.count,
            min_ms=self.min * 1000,
            max_ms=self.max * 1000,
            p50_ms=self.percentile(0.50) * 1000,
            p95_ms=self.percentile(0.95) * 1000,
            p99_ms=self.percentile(0.99) * 1000,
            last_seen=self.last_seen,
        )


def sql_text(query: Any, context: Any = None) -> str:
    """The text of a query (``str``, ``bytes`` or ``psycopg.sql`` object), for reading."""
    key = _sql_key(query, context)
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else key


def _sql_key(query: Any, context: Any) -> str | bytes:
    if isinstance(query, str | bytes):
        return query
    if isinstance(query, sql.Composable):
        try:
            return query.as_string(context)
        except Exception:  # a statement that cannot render fails in psycopg, not here
            return repr(query)
    return str(query)


class QueryStats:
    """Collects statement timings by fingerprint; one instance may serve several pools.

    :param slow_query_ms: statements taking at least this long are slow (counted, kept
        in the slow list, logged).
    :param max_fingerprints: statement shapes kept at most; when full, the least recently
        seen tenth is evicted.
    :param slowest: how many slow statements :meth:`stats` lists, slowest first.
    :param slow_history: how many recent slow statements the slowest are chosen from.
    :param sql_cache_size: distinct SQL texts whose fingerprint is remembered.
    """

    def __init__(
        self,
        *,
        slow_query_ms: float = 100.0,
        max_fingerprints: int = 1000,
        slowest: int = 10,
        slow_history: int = 100,
        sql_cache_size: int = 4096,
    ) -> None:
        for name, value in (
            ("max_fingerprints", max_fingerprints),
            ("slowest", slowest),
            ("slow_history", slow_history),
            ("sql_cache_size", sql_cache_size),
        ):
            if value < 1:
                raise ConfigError(f"QueryStats {name}={value!r} must be at least 1")
        if slow_query_ms < 0:
            raise ConfigError(f"QueryStats slow_query_ms={slow_query_ms!r} must be >= 0")
        self.slow_query_ms = float(slow_query_ms)
        self.max_fingerprints = max_fingerprints
        self.slowest = slowest
        self._slow_seconds = slow_query_ms / 1000
        self._sql_cache_size = sql_cache_size
        self._lock = threading.Lock()
        # SQL text -> fingerprint (an LRU), so that a statement is normalized once. The
        # fingerprint table drops its least recently seen tenth when over the cap.
        self._by_sql: OrderedDict[str | bytes, Fingerprint] = OrderedDict()
        # The cached fingerprint of an SQL text, or None: a lookup without a Python call,
        # for N+1 detection, which needs one per statement (text_fingerprint() on a miss).
        self.cached_fingerprint = self._by_sql.get
        self._entries: dict[str, _Entry] = {}
        self._recent_slow: deque[SlowQuery] = deque(maxlen=slow_history)
        # (SQL text, seconds, rows, failed, pool, perf_counter() at the end)
        self._pending: deque[tuple[str | bytes, float, int, bool, str, float]] = deque()
        # Samples the plans of slow statements (plan_sampler(); None: no plans taken).
        self.plans: PlanSampler | None = None
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._since = time()
        self._count = self._errors = self._slow = self._rows = self._evicted = 0
        self._total = 0.0

    def plan_sampler(self, settings: ExplainSettings | None = None) -> PlanSampler:
        """The sampler of slow statements' plans (``plans``), made with ``settings`` on the
        first call; pools given ``explain=`` attach their explainer to it."""
        with self._lock:
            if self.plans is None:
                self.plans = PlanSampler(settings)
            return self.plans

    def fingerprint(self, query: Any, context: Any = None) -> Fingerprint:
        """The fingerprint of a query: ``str``, ``bytes`` or ``psycopg.sql`` object."""
        key = _sql_key(query, context)
        found = self._by_sql.get(key)
        return found if found is not None else Fingerprint.of(key)

    def _fingerprint_of(self, key: str | bytes) -> Fingerprint:
        """The fingerprint of an SQL text, normalized once and cached; under the lock."""
        found = self._by_sql.get(key)
        if found is not None:
            self._by_sql.move_to_end(key)
            return found
        found = Fingerprint.of(key)
        if len(key) <= MAX_CACHED_SQL:
            self._by_sql[key] = found
            if len(self._by_sql) > self._sql_cache_size:
                self._by_sql.popitem(last=False)
        return found

    def text_fingerprint(self, key: str | bytes) -> Fingerprint:
        """The fingerprint of SQL text ``key`` outside the batches (N+1 detection counts
        by it as each statement runs): from the cache, else normalized and cached when
        the lock is free (so the batch finds it), else normalized only."""
        found = self._by_sql.get(key)
        if found is not None:
            return found
        if not self._lock.acquire(blocking=False):
            return Fingerprint.of(key)
        try:
            return self._fingerprint_of(key)
        finally:
            self._lock.release()

    def _entry_of(self, key: str | bytes) -> _Entry:
        """The table's entry for SQL text ``key``, made (evicting the oldest) if missing;
        under the lock."""
        fingerprint = self._fingerprint_of(key)
        entry = self._entries.get(fingerprint.id)
        if entry is None:
            if len(self._entries) >= self.max_fingerprints:
                self._evict()
            entry = self._entries[fingerprint.id] = _Entry(fingerprint)
        return entry

    def _evict(self) -> None:
        """Drop the least recently seen tenth of the fingerprint table (at least one)."""
        number = len(self._entries) - self.max_fingerprints + 1 + self.max_fingerprints // 10
        for entry in heapq.nsmallest(number, self._entries.values(), key=lambda e: e.seq):
            del self._entries[entry.fingerprint.id]
        self._evicted += number

    def record(
        self,
        query: Any,
        seconds: float,
        rows: int = 0,
        failed: bool = False,
        pool: str = "",
        context: Any = None,
        ended: float | None = None,
        params: Any = NO_PARAMS,
    ) -> None:
        """Count one run of ``query`` that took ``seconds`` and returned/affected ``rows``.

        ``context`` (a connection or cursor) renders ``psycopg.sql`` objects; ``ended`` is
        when the run ended by ``time.perf_counter()`` (now by default: the timed cursors
        pass the one they read). A slow run is also logged as a ``slow_query`` structlog
        event with the fingerprint and the duration — never the parameters. The telemetry
        hooks ``statement`` and ``db_operation`` (``perfkit.otel``) are called here, for
        every timed statement.
        Inside a unit of work (a request, a job run) the run is also counted by
        fingerprint, to find N+1 patterns (``perfkit.queries._nplusone``).
        """
        # The hot path only queues the sample (deque.append is atomic); samples are
        # added up in batches, where the tables are warm in the CPU cache, by whichever
        # call fills the batch, by a slow statement (logged at once) or by stats().
        key = query if type(query) is str else _sql_key(query, context)
        pending = self._pending
        pending.append(
            (key, seconds, rows, failed, pool, perf_counter() if ended is None else ended)
        )
        if seconds >= self._slow_seconds:
            self._drain()
            plans = self.plans
            if plans is not None and params is not NO_PARAMS and not failed:
                plans.offer(self.fingerprint(key), key, params, seconds, pool)
        elif len(pending) >= BATCH:
            self._drain(wait=False)  # another thread is draining: let it
        unit = _units.current.get()
        if unit is not None and unit.open:  # counted by fingerprint: N+1 detection
            (unit.tally or tally_for(unit)).note(key, seconds, self)
        hook = _telemetry.statement
        if hook is not None:
            hook(lambda: self.fingerprint(query, context).text, seconds, rows, failed, pool)
        operation = _telemetry.db_operation
        if operation is not None:
            operation(lambda: self.fingerprint(query, context).text, seconds, failed, pool)

    def _drain(self, wait: bool = True) -> None:
        """Add up the queued samples, then log the slow ones (outside the lock)."""
        if not self._lock.acquire(blocking=wait):
            return
        slow: list[SlowQuery] = []
        try:
            pending = self._pending
            slow_seconds = self._slow_seconds
            to_unix = time() - perf_counter()  # the samples' perf_counter() -> Unix time
            # This batch's entries by SQL text, so that a statement run many times in a
            # batch is looked up once; emptied when the table evicts (an entry may be gone).
            batch: dict[str | bytes, _Entry] = {}
            count, total, rows_total = self._count, 0.0, 0
            # Only this locked loop pops, so popleft cannot fail; samples queued meanwhile
            # are left to their own caller, so that one drain cannot run on forever.
            for _ in range(len(pending)):
                key, seconds, rows, failed, pool, ended = pending.popleft()
                entry = batch.get(key)
                if entry is None:
                    if not key:  # "": psycopg_pool's connection check, not a statement
                        continue
                    evicted = self._evicted
                    entry = self._entry_of(key)
                    if self._evicted != evicted:
                        batch.clear()
                    batch[key] = entry
                count += 1
                total += seconds
                rows_total += rows
                entry.seq = count
                entry.count += 1
                entry.total += seconds
                entry.rows += rows
                entry.last_seen = ended + to_unix
                entry.buckets[bisect_left(BOUNDS, seconds)] += 1
                if seconds > entry.max:
                    entry.max = seconds
                if seconds < entry.min:
                    entry.min = seconds
                if failed:
                    entry.errors += 1
                    self._errors += 1
                if seconds >= slow_seconds:
                    entry.slow += 1
                    self._slow += 1
                    fingerprint = entry.fingerprint
                    slow.append(
                        SlowQuery(
                            fingerprint=fingerprint.text,
                            fingerprint_id=fingerprint.id,
                            duration_ms=seconds * 1000,
                            at=ended + to_unix,
                            pool=pool,
                            failed=failed,
                        )
                    )
            self._count = count
            self._total += total
            self._rows += rows_total
            self._recent_slow.extend(slow)
        finally:
            self._lock.release()
        for query in slow:
            _log.warning(
                "slow_query",
                fingerprint=query.fingerprint,
                fingerprint_id=query.fingerprint_id,
                duration_ms=round(query.duration_ms, 3),
                pool=query.pool,
                failed=query.failed,
            )

    def stats(self, top: int | None = None) -> QueryStatsSnapshot:
        """A snapshot; ``by_fingerprint`` sorted by total time, cut to ``top`` when given."""
        self._drain()
        with self._lock:
            entries = sorted(self._entries.values(), key=lambda e: e.total, reverse=True)
            if top is not None:
                entries = entries[:top]
            slowest = sorted(self._recent_slow, key=lambda s: s.duration_ms, reverse=True)
            return QueryStatsSnapshot.of(
                since=self._since,
                slow_query_ms=self.slow_query_ms,
                count=self._count,
                errors=self._errors,
                slow=self._slow,
                rows=self._rows,
                total=self._total,
                fingerprints_tracked=len(self._entries),
                fingerprints_evicted=self._evicted,
                by_fingerprint=[entry.snapshot() for entry in entries],
                slowest=slowest[: self.slowest],
                plans=self.plans.plans() if self.plans is not None else None,
            )

    def reset_stats(self) -> None:
        """Forget every statement and counter (as :meth:`reset`)."""
        self.reset()

    def reset(self) -> None:
        """Forget every statement and counter."""
        self._drain()
        with self._lock:
            self._entries.clear()
            self._by_sql.clear()
            self._recent_slow.clear()
            self._reset_counters()
        if self.plans is not None:
            self.plans.reset()
