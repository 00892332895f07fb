"""Pagination helpers: keyset (``WHERE (sort_key, id) > (...)``) and limit/offset.

Statements are composed with ``psycopg.sql``: table and column names are quoted
identifiers, every value is a parameter. Rows come back as dicts. This module builds the
statements and pages; ``_pagination_async.py`` (``AsyncKeysetPagination``,
``AsyncOffsetPagination``) runs them, and ``_pagination.py`` (``KeysetPagination``,
``OffsetPagination``) is generated from it by ``tools/async_to_sync.py``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from psycopg import sql

from perfkit._errors import QueryError

__all__ = ["BaseKeysetPagination", "BaseOffsetPagination", "KeysetPage", "OffsetPage"]

MAX_PAGE_SIZE = 10_000

_Row = dict[str, Any]
_cursor_decoder = msgspec.json.Decoder(tuple[Any, Any])


class KeysetPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a keyset pagination; ``next_cursor`` is None on the last page."""

    rows: list[_Row]
    next_cursor: str | None


class OffsetPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a limit/offset pagination; ``total`` only when asked for."""

    rows: list[_Row]
    page: int
    per_page: int
    has_next: bool
    total: int | None


def _identifier(name: str | Sequence[str]) -> sql.Identifier:
    return sql.Identifier(name) if isinstance(name, str) else sql.Identifier(*name)


def _check_size(name: str, value: int) -> None:
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise QueryError(f"{name}={value!r} must be between 1 and {MAX_PAGE_SIZE}")


class _Pagination:
    """The table, the columns and the filters: everything that is not I/O."""

    def __init__(self, table: str | Sequence[str], columns: Sequence[str]) -> None:
        if not columns:
            raise QueryError("pagination needs at least one column to select")
        self.table = _identifier(table)
        self.columns = list(columns)

    def _select(self, columns: Sequence[str]) -> sql.Composed:
        return sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), self.table
        )

    @staticmethod
    def _filters(where: Mapping[str, Any] | None) -> tuple[list[sql.Composable], list[Any]]:
        conditions: list[sql.Composable] = []
        params: list[Any] = []
        for column, value in (where or {}).items():
            if value is None:
                conditions.append(sql.SQL("{} IS NULL").format(sql.Identifier(column)))
            else:
                conditions.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
                params.append(value)
        return conditions, params

    @staticmethod
    def _where(conditions: list[sql.Composable]) -> sql.Composable:
        if not conditions:
            return sql.SQL("")
        return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)


class BaseKeysetPagination(_Pagination):
    """Keyset pagination over ``table``, ordered by ``(sort_key, id_column)``.

    Each page continues strictly after the last row of the previous one, so rows
    inserted or deleted elsewhere never make a page skip or repeat a row. ``sort_key``
    must be NOT NULL; ``id_column`` must be unique. Both are always selected.
    """

    def __init__(
        self,
        table: str | Sequence[str],
        columns: Sequence[str],
        *,
        sort_key: str = "id",
        id_column: str = "id",
        descending: bool = False,
    ) -> None:
        keys = [sort_key] if sort_key == id_column else [sort_key, id_column]
        super().__init__(table, [*columns, *(k for k in keys if k not in columns)])
        self.sort_key = sort_key
        self.id_column = id_column
        self.descending = descending
        self._keys = keys

    def statement(
        self, *, after: str | None, limit: int, where: Mapping[str, Any] | None = None
    ) -> tuple[sql.Composed, list[Any]]:
        """The statement and parameters fetching ``limit + 1`` rows after cursor ``after``."""
        _check_size("limit", limit)
        conditions, params = self._filters(where)
        if after is not None:
            position = self.decode_cursor(after)
            keys = sql.SQL(", ").join(map(sql.Identifier, self._keys))
            marks = sql.SQL(", ").join(sql.Placeholder() * len(self._keys))
            operator = sql.SQL("<" if self.descending else ">")
            conditions.append(sql.SQL("({}) {} ({})").format(keys, operator, marks))
            params += position[: len(self._keys)]
        direction = sql.SQL(" DESC" if self.descending else "")
        order = sql.SQL(", ").join(sql.Identifier(k) + direction for k in self._keys)
        query = sql.Composed(
            [
                self._select(self.columns),
                self._where(conditions),
                sql.SQL(" ORDER BY ") + order,
                sql.SQL(" LIMIT %s"),
            ]
        )
        return query, [*params, limit + 1]

    def encode_cursor(self, row: _Row) -> str:
        """The opaque cursor pointing just after ``row``."""
        position = [row[self.sort_key], row[self.id_column]]
        return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")

    def decode_cursor(self, cursor: str) -> list[Any]:
        """The ``[sort value, id]`` a cursor points after; ``QueryError`` when it is bad."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            return list(_cursor_decoder.decode(raw))
        except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
            raise QueryError(f"bad pagination cursor {cursor[:40]!r}: {exc}") from exc

    def page(self, rows: list[_Row], limit: int) -> KeysetPage:
        """The page made of ``rows`` (fetched with ``limit + 1``)."""
        if len(rows) <= limit:
            return KeysetPage(rows=rows, next_cursor=None)
        rows = rows[:limit]
        return KeysetPage(rows=rows, next_cursor=self.encode_cursor(rows[-1]))


class BaseOffsetPagination(_Pagination):
    """Limit/offset pagination over ``table`` ordered by ``order_by`` (unique, ideally).

    Simple and allows jumping to page N, but rows inserted before the current page shift
    later pages (prefer :class:`KeysetPagination` for feeds) and deep offsets are slow.
    """

    def __init__(
        self,
        table: str | Sequence[str],
        columns: Sequence[str],
        *,
        order_by: Sequence[str] = ("id",),
        descending: bool = False,
    ) -> None:
        super().__init__(table, columns)
        if not order_by:
            raise QueryError("offset pagination needs an order_by column")
        direction = sql.SQL(" DESC" if descending else "")
        self._order = sql.SQL(", ").join(sql.Identifier(c) + direction for c in order_by)

    def statements(
        self, *, page: int, per_page: int, where: Mapping[str, Any] | None = None
    ) -> tuple[sql.Composed, list[Any], sql.Composed, list[Any]]:
        """The page statement and parameters, then the count statement and parameters."""
        if page < 1:
            raise QueryError(f"page={page!r} must be >= 1")
        _check_size("per_page", per_page)
        conditions, params = self._filters(where)
        where_sql = self._where(conditions)
        query = sql.Composed(
            [
                self._select(self.columns),
                where_sql,
                sql.SQL(" ORDER BY ") + self._order,
                sql.SQL(" LIMIT %s OFFSET %s"),
            ]
        )
        count = sql.SQL("SELECT count(*) FROM {}").format(self.table) + where_sql
        return query, [*params, per_page + 1, (page - 1) * per_page], count, params

    @staticmethod
    def _page(rows: list[_Row], page: int, per_page: int, total: int | None) -> OffsetPage:
        return OffsetPage(
            rows=rows[:per_page],
            page=page,
            per_page=per_page,
            has_next=len(rows) > per_page,
            total=total,
        )
