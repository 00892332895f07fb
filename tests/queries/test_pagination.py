# Generated from test_pagination_async.py by tools/async_to_sync.py: do not edit.
"""Keyset and limit/offset pagination over a real table.

Written once, for both twins: ``test_pagination.py`` is generated from
``test_pagination_async.py`` (tools/async_to_sync.py). The two twins' pages compared are in
``test_pagination_twins.py``."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from perfkit import QueryError
from perfkit.queries import KeysetPagination, OffsetPagination, TimedPool

TABLE = "Shop Products"  # needs quoting: a space and capitals


def make_table(conn: psycopg.Connection[object], count: int) -> None:
    # `+`, not implicit concatenation: the generated twin would join that into one long line.
    conn.execute(
        'CREATE TABLE "Shop Products" (id serial PRIMARY KEY, price int NOT NULL, '
        + "category text NOT NULL, created timestamptz NOT NULL, secret text)"
    )
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        (random.randint(1, 20), random.choice("ab"), start + timedelta(minutes=i % 37))
        for i in range(count)
    ]
    with conn.cursor() as cur:
        cur.executemany(
            'INSERT INTO "Shop Products" (price, category, created) VALUES (%s, %s, %s)', rows
        )


@pytest.mark.parametrize("descending", [False, True])
def test_keyset_pages_never_skip_or_repeat_while_rows_are_inserted_behind(
    pool: TimedPool, descending: bool
) -> None:
    pagination = KeysetPagination(
        TABLE, ["price", "category"], sort_key="price", descending=descending
    )
    with pool.connection() as conn:
        conn.set_autocommit(True)
        make_table(conn, 100)
        original = {row[0] for row in conn.execute('SELECT id FROM "Shop Products"')}
        seen: list[int] = []
        keys: list[tuple[int, int]] = []
        after = None
        while True:
            page = pagination.fetch(conn, after=after, limit=7)
            assert len(page.rows) <= 7
            seen += [row["id"] for row in page.rows]
            keys += [(row["price"], row["id"]) for row in page.rows]
            assert set(page.rows[0]) == {"price", "category", "id"}  # selected columns only
            if page.next_cursor is None:
                break
            # a row that sorts before the cursor: keyset pagination must not shift
            behind = 0 if not descending else 21
            conn.execute(
                'INSERT INTO "Shop Products" (price, category, created) VALUES (%s, %s, now())',
                (behind, "a"),
            )
            after = page.next_cursor
    assert len(seen) == len(set(seen)), "a row was repeated"
    assert set(seen) == original, "a row was skipped"
    assert keys == sorted(keys, reverse=descending)


def test_keyset_pages_are_in_order_with_a_timestamp_key_and_filters(pool: TimedPool) -> None:
    pagination = KeysetPagination(TABLE, ["created", "category"], sort_key="created")
    with pool.connection() as conn:
        make_table(conn, 60)
        rows = []
        after = None
        while True:
            page = pagination.fetch(conn, after=after, limit=9, where={"category": "a"})
            rows += page.rows
            if page.next_cursor is None:
                break
            after = page.next_cursor
        expected = conn.execute(
            'SELECT id FROM "Shop Products" WHERE category = %s ORDER BY created, id', ("a",)
        ).fetchall()
    assert [row["id"] for row in rows] == [row[0] for row in expected]
    assert rows and all(row["category"] == "a" for row in rows)


def test_keyset_statement_quotes_names_and_passes_values_as_parameters(pool: TimedPool) -> None:
    pagination = KeysetPagination(TABLE, ["price"], sort_key="price")
    with pool.connection() as conn:
        make_table(conn, 5)
        first = pagination.fetch(conn, limit=2, where={"category": "a'; DROP TABLE x; --"})
        assert first.rows == [] and first.next_cursor is None
        page = pagination.fetch(conn, limit=2)
        pagination.fetch(conn, after=page.next_cursor, limit=2)
    texts = {e.fingerprint for e in pool.stats().queries.by_fingerprint}
    assert (
        'SELECT "price", "id" FROM "Shop Products" WHERE ("price", "id") > (?, ?) '
        + 'ORDER BY "price", "id" LIMIT ?'
        in texts
    )
    assert not any("DROP" in text for text in texts)


@pytest.mark.parametrize("cursor", ["not base64!", "bm90IGpzb24", "WzFd", "eyJhIjoxfQ"])
def test_bad_cursor_raises_query_error(cursor: str) -> None:
    pagination = KeysetPagination("t", ["a"])
    with pytest.raises(QueryError, match="bad pagination cursor"):
        pagination.statement(after=cursor, limit=5)


def test_bad_sizes_raise_query_error() -> None:
    with pytest.raises(QueryError):
        KeysetPagination("t", ["a"]).statement(after=None, limit=0)
    with pytest.raises(QueryError):
        OffsetPagination("t", ["a"]).statements(page=0, per_page=10)
    with pytest.raises(QueryError):
        OffsetPagination("t", [])


def test_offset_pages_total_and_has_next(pool: TimedPool) -> None:
    pagination = OffsetPagination(TABLE, ["id", "price"], order_by=["id"])
    with pool.connection() as conn:
        make_table(conn, 25)
        first = pagination.fetch(conn, page=1, per_page=10, with_total=True)
        last = pagination.fetch(conn, page=3, per_page=10)
        beyond = pagination.fetch(conn, page=4, per_page=10)
        only_b = pagination.fetch(conn, per_page=100, where={"category": "b"}, with_total=True)
        count_b = conn.execute(
            'SELECT count(*) FROM "Shop Products" WHERE category = %s', ("b",)
        ).fetchone()
    assert [row["id"] for row in first.rows] == list(range(1, 11))
    assert (first.total, first.has_next, first.page, first.per_page) == (25, True, 1, 10)
    assert [row["id"] for row in last.rows] == list(range(21, 26))
    assert (last.has_next, last.total) == (False, None)
    assert beyond.rows == [] and (not beyond.has_next)
    assert count_b is not None and only_b.total == count_b[0] == len(only_b.rows)
