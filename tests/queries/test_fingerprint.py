"""Fingerprint normalization: same shape, same fingerprint; other shape, other one."""

from __future__ import annotations

import pytest
from psycopg import sql

from perfkit.queries import Fingerprint, QueryStats, normalize_sql


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("SELECT * FROM users WHERE id = 42", "select *\n  from Users where ID=%s;"),
        ("SELECT * FROM t WHERE name = 'alice'", "SELECT * FROM t WHERE name = $1"),
        ("SELECT * FROM t WHERE x IN (1, 2, 3)", "SELECT * FROM t WHERE x IN (%s)"),
        ("SELECT * FROM t WHERE x = -1.5e3", "SELECT * FROM t WHERE x = %(x)s"),
        ("INSERT INTO t (a) VALUES (1), (2), (3)", "INSERT INTO t (a) VALUES (%s), (%s)"),
        ("SELECT $$it's$$ -- a comment", "SELECT /* other */ E'it\\'s'"),
        ("SELECT ARRAY[1, 2, 3]", "SELECT ARRAY[%s]"),
        (b"SELECT 1", "SELECT 2"),
    ],
)
def test_same_shape_same_fingerprint(one: str | bytes, other: str) -> None:
    assert normalize_sql(one) == normalize_sql(other)
    assert Fingerprint.of(one).id == Fingerprint.of(other).id


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("SELECT a FROM t", "SELECT b FROM t"),
        ("SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a > 1"),
        ('SELECT * FROM "Users"', "SELECT * FROM users"),
        ("SELECT * FROM t WHERE x IN (1, 2)", "SELECT * FROM t WHERE x IN (SELECT y FROM u)"),
        ("SELECT a - 1 FROM t", "SELECT a FROM t"),
    ],
)
def test_different_shapes_differ(one: str, other: str) -> None:
    assert normalize_sql(one) != normalize_sql(other)
    assert Fingerprint.of(one).id != Fingerprint.of(other).id


def test_normalized_text_reads_well_and_holds_no_values() -> None:
    text = normalize_sql(
        "select name, count(*) from users where email = 'bob@example.com' "
        "and age in (31, 32) group by name"
    )
    assert text == "SELECT name, count(*) FROM users WHERE email = ? AND age IN (...) GROUP BY name"
    assert "bob" not in text and "31" not in text


def test_composed_statements_are_fingerprinted_by_their_text() -> None:
    stats = QueryStats()
    composed = sql.SQL("SELECT {} FROM {} WHERE id = {}").format(
        sql.Identifier("name"), sql.Identifier("users"), sql.Literal(7)
    )
    assert stats.fingerprint(composed).text == 'SELECT "name" FROM "users" WHERE id = ?'
    assert stats.fingerprint(composed) == stats.fingerprint(composed)


def test_fingerprint_cache_is_bounded() -> None:
    stats = QueryStats(sql_cache_size=10)
    for number in range(100):
        stats.record(f"SELECT {number}", 0.001)
    assert len(stats._by_sql) == 10
    assert stats.stats().by_fingerprint[0].count == 100  # one shape
