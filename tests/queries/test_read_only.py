"""Which statements are read-only, judged by their words: those a pool may run again after
their connection died under them.

Hand-written: no pool involved. The pools' retries are generated from
``test_retry_async.py``."""

from __future__ import annotations

import pytest

from perfkit.queries._watch import read_only


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SELECT * FROM t WHERE id = %s", True),
        ("  (select 1) union (select 2)", True),
        ("WITH x AS (SELECT 1) SELECT * FROM x", True),
        ("SHOW statement_timeout", True),
        ("SELECT * FROM t WHERE id IN (1, 2)", True),
        ("INSERT INTO t VALUES (1)", False),
        ("UPDATE t SET x = 1", False),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", False),
        ("SELECT * INTO t2 FROM t", False),
        ("SELECT * FROM t FOR UPDATE", False),
        ("SELECT * FROM t FOR NO KEY UPDATE", False),
        ("SELECT nextval('s')", False),
        ("SELECT pg_advisory_lock(1)", False),
        ("BEGIN", False),
    ],
)
def test_read_only_is_judged_by_the_statement_words(text: str, expected: bool) -> None:
    assert read_only(text) is expected
