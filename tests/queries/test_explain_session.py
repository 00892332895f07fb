"""What plans need no pool for: which statements are judged reads, and the explain session's
own refusal to ANALYZE a write.

Hand-written: no pool twin is involved (the session is driven through the sync Explainer).
The pools' plan tests are generated from ``test_explain_async.py``."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
import pytest
import structlog

from perfkit.queries import ExplainSettings, Fingerprint, PlanSampler
from perfkit.queries._explain import Explainer
from perfkit.queries._explain_base import Job
from perfkit.queries._plan import statement_kind
from tests.queries.conftest import SECRET


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT * FROM t WHERE a = %s", "read"),
        ("with x as (select 1) select * from x", "read"),
        ("SELECT count(*), lower(name) FROM t -- DELETE in a comment", "read"),
        ("SELECT 'DELETE FROM t' FROM t", "read"),
        ("(SELECT 1) UNION (SELECT 2);", "read"),
        ("SELECT * FROM t FOR UPDATE", "write"),
        ("SELECT * FROM t FOR KEY SHARE", "write"),
        ("SELECT * FROM t FOR NO KEY UPDATE", "write"),
        ("WITH d AS (DELETE FROM t RETURNING id) SELECT * FROM d", "write"),
        ("SELECT nextval('s')", "write"),
        ("SELECT my_function(1)", "write"),
        ("SELECT public.lower(x) FROM t", "write"),
        ('SELECT "Lower"(x) FROM t', "write"),
        ("SELECT * INTO new_t FROM t", "write"),
        ("UPDATE t SET a = 1", "write"),
        ("merge into t using s on true when matched then delete", None),
        ("INSERT INTO t VALUES (1)", "write"),
        ("SELECT 1; DELETE FROM t", None),
        ("EXPLAIN SELECT 1", None),
        ("SET search_path = x", None),
        ("BEGIN", None),
    ],
)
def test_statement_kind_is_conservative(sql: str, kind: str | None) -> None:
    assert statement_kind(sql) == kind


def test_the_explain_session_refuses_to_analyze_a_write(big: str) -> None:
    """Should a write ever be judged a read, its EXPLAIN ANALYZE runs in a read-only
    transaction: refused by the server, nothing written; the error (which quotes the
    value) is logged by its class and SQLSTATE only."""
    sampler = PlanSampler(ExplainSettings())
    explainer = Explainer(big, sampler)
    writes = [
        ("UPDATE counter SET n = n + 1 WHERE id = %s", (1,)),
        ("SELECT id FROM big WHERE id = %s::int", (SECRET,)),  # fails: quotes the value
    ]
    with structlog.testing.capture_logs() as logs:
        for sql, params in writes:
            job = Job(Fingerprint.of(sql), sql, params, True, 1.0, "test")
            assert explainer.submit(job)
        wait_until(lambda: sampler.stats().failures == 2)
        explainer.close()
    assert sampler.stats().explains == 0 and sampler.plans() == []
    errors = sorted(entry["sqlstate"] for entry in logs if entry["event"] == "explain_failed")
    assert errors == ["22P02", "25006"]  # invalid text; read-only transaction
    assert SECRET not in repr(logs)
    with psycopg.connect(big) as conn:
        assert conn.execute("SELECT n FROM counter").fetchone() == (0,)
