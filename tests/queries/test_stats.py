"""QueryStats bookkeeping: percentiles, caps, the slow list and its log events."""

from __future__ import annotations

import threading
import time

import msgspec
import pytest
from structlog.testing import capture_logs

from perfkit import ConfigError
from perfkit.queries import QueryStats, QueryStatsSnapshot

# Half a bucket of the 8-per-doubling histogram, plus rounding of the rank.
PRECISION = 2 ** (1 / 16) - 1 + 0.01


def test_percentiles_are_within_bucket_precision() -> None:
    stats = QueryStats(slow_query_ms=10_000)
    for millis in range(1, 1001):
        stats.record("SELECT pg_sleep(%s)", millis / 1000, rows=1)
    (entry,) = stats.stats().by_fingerprint
    assert entry.count == 1000
    assert entry.rows == 1000
    assert entry.min_ms == pytest.approx(1)
    assert entry.max_ms == pytest.approx(1000)
    assert entry.mean_ms == pytest.approx(500.5)
    for measured, exact in ((entry.p50_ms, 500), (entry.p95_ms, 950), (entry.p99_ms, 990)):
        assert abs(measured - exact) / exact <= PRECISION, (measured, exact)


def test_single_sample_percentiles_are_the_sample() -> None:
    stats = QueryStats()
    stats.record("SELECT 1", 0.0123)
    (entry,) = stats.stats().by_fingerprint
    assert entry.p50_ms == entry.p99_ms == entry.max_ms == pytest.approx(12.3)


def test_fingerprint_table_is_capped_and_evicts_least_recently_seen() -> None:
    stats = QueryStats(max_fingerprints=50)
    stats.record("SELECT keep FROM t", 0.001)
    for number in range(500):
        stats.record(f"SELECT c{number} FROM t", 0.001)
        stats.record("SELECT keep FROM t", 0.001)  # recently used: never evicted
        assert stats.stats(top=0).fingerprints_tracked <= 50
    snapshot = stats.stats()
    assert 45 <= snapshot.fingerprints_tracked <= 50
    assert snapshot.fingerprints_tracked + snapshot.fingerprints_evicted == 501
    assert snapshot.count == 1001  # totals count every statement, evicted or not
    texts = {entry.fingerprint for entry in snapshot.by_fingerprint}
    assert "SELECT keep FROM t" in texts
    assert "SELECT c499 FROM t" in texts
    assert "SELECT c0 FROM t" not in texts
    (keep,) = [e for e in snapshot.by_fingerprint if e.fingerprint == "SELECT keep FROM t"]
    assert keep.count == 501


def test_a_statement_evicted_within_a_batch_gets_a_new_entry() -> None:
    """Samples are added up in batches, each SQL text looked up once per batch: an entry
    evicted by a later sample of the same batch is not updated behind the table's back."""
    stats = QueryStats(max_fingerprints=2)
    for text in ("SELECT a FROM t", "SELECT b FROM t", "SELECT c FROM t", "SELECT a FROM t"):
        stats.record(text, 0.001)  # fewer than a batch: added up by stats() below
    snapshot = stats.stats()
    counts = {entry.fingerprint: entry.count for entry in snapshot.by_fingerprint}
    assert counts == {"SELECT c FROM t": 1, "SELECT a FROM t": 1}
    assert snapshot.count == 4 and snapshot.fingerprints_evicted == 2


def test_last_seen_and_slow_at_are_unix_times() -> None:
    stats = QueryStats(slow_query_ms=100)
    before = time.time()
    stats.record("SELECT 1", 0.001)
    stats.record("SELECT 2", 0.2)
    after = time.time()
    snapshot = stats.stats()
    for entry in snapshot.by_fingerprint:
        assert before - 0.01 <= entry.last_seen <= after + 0.01
    (slow,) = snapshot.slowest
    assert before - 0.01 <= slow.at <= after + 0.01


def test_slow_statements_counted_listed_slowest_first_and_logged_without_values() -> None:
    stats = QueryStats(slow_query_ms=100, slowest=3, slow_history=5)
    with capture_logs() as events:
        stats.record("SELECT * FROM users WHERE email = 'secret@example.com'", 0.050)
        for millis in (150, 400, 120, 300, 200, 110):
            stats.record("SELECT * FROM users WHERE email = 'secret@example.com'", millis / 1000)
    snapshot = stats.stats()
    assert snapshot.count == 7
    assert snapshot.slow == 6
    assert snapshot.slow_pct == pytest.approx(600 / 7)
    # the last 5 slow ones are kept, and the 3 slowest of those listed
    assert [round(s.duration_ms) for s in snapshot.slowest] == [400, 300, 200]
    assert snapshot.slowest[0].fingerprint == "SELECT * FROM users WHERE email = ?"
    assert len(events) == 6
    assert {event["event"] for event in events} == {"slow_query"}
    assert events[1]["duration_ms"] == pytest.approx(400)
    assert events[1]["fingerprint"] == "SELECT * FROM users WHERE email = ?"
    assert "secret" not in repr(events)


def test_errors_counted_per_fingerprint_and_in_total() -> None:
    stats = QueryStats()
    stats.record("SELECT 1", 0.001)
    stats.record("SELECT * FROM missing", 0.001, failed=True)
    snapshot = stats.stats()
    assert snapshot.errors == 1
    by_text = {entry.fingerprint: entry for entry in snapshot.by_fingerprint}
    assert by_text["SELECT * FROM missing"].errors == 1
    assert by_text["SELECT ?"].errors == 0


def test_top_cuts_by_total_time_and_reset_forgets() -> None:
    stats = QueryStats()
    stats.record("SELECT a FROM t", 0.5)
    stats.record("SELECT b FROM t", 0.1)
    stats.record("SELECT c FROM t", 0.9)
    assert [e.fingerprint for e in stats.stats(top=2).by_fingerprint] == [
        "SELECT c FROM t",
        "SELECT a FROM t",
    ]
    stats.reset()
    snapshot = stats.stats()
    assert snapshot.count == 0 and snapshot.by_fingerprint == [] and snapshot.slowest == []


def test_snapshot_round_trips_through_json() -> None:
    stats = QueryStats(slow_query_ms=1)
    stats.record("SELECT 1", 0.01, rows=1)
    snapshot = stats.stats()
    decoded = msgspec.json.decode(msgspec.json.encode(snapshot), type=QueryStatsSnapshot)
    assert decoded == snapshot


@pytest.mark.parametrize(
    "arguments",
    [{"max_fingerprints": 0}, {"slowest": 0}, {"slow_query_ms": -1}, {"sql_cache_size": 0}],
)
def test_bad_arguments_raise_config_error(arguments: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        QueryStats(**arguments)  # type: ignore[arg-type]


def test_no_sample_is_lost_across_threads() -> None:
    stats = QueryStats(max_fingerprints=20)
    snapshots: list[int] = []

    def work(number: int) -> None:
        for index in range(5000):
            stats.record(f"SELECT c{(number * index) % 30} FROM t", 0.0001 * (index % 7), 1)
            if index % 1000 == 0:
                snapshots.append(stats.stats(top=1).count)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = stats.stats()
    assert snapshot.count == snapshot.rows == 40_000
    assert snapshot.fingerprints_tracked <= 20
    assert snapshots and max(snapshots) <= 40_000
