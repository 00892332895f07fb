"""AsyncKeysetPagination and AsyncOffsetPagination: pages fetched on psycopg's AsyncConnection.

The source of ``_pagination.py`` (KeysetPagination, OffsetPagination), generated from this
file by ``tools/async_to_sync.py``: edit this one, then run that script. The statements and
pages are built in ``_pagination_base.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from perfkit.queries._pagination_base import (
    BaseKeysetPagination,
    BaseOffsetPagination,
    KeysetPage,
    OffsetPage,
)

__all__ = ["AsyncKeysetPagination", "AsyncOffsetPagination"]


class AsyncKeysetPagination(BaseKeysetPagination):
    """Keyset pagination (:class:`BaseKeysetPagination`) whose pages are fetched through
    psycopg's ``AsyncConnection``."""

    async def fetch(
        self,
        conn: AsyncConnection[Any],
        *,
        after: str | None = None,
        limit: int = 20,
        where: Mapping[str, Any] | None = None,
    ) -> KeysetPage:
        """The page after cursor ``after`` (the first page when None)."""
        query, params = self.statement(after=after, limit=limit, where=where)
        async with conn.cursor(row_factory=dict_row) as cur:
            rows = await (await cur.execute(query, params)).fetchall()
        return self.page(rows, limit)


class AsyncOffsetPagination(BaseOffsetPagination):
    """Limit/offset pagination (:class:`BaseOffsetPagination`) whose pages are fetched
    through psycopg's ``AsyncConnection``."""

    async def fetch(
        self,
        conn: AsyncConnection[Any],
        *,
        page: int = 1,
        per_page: int = 20,
        where: Mapping[str, Any] | None = None,
        with_total: bool = False,
    ) -> OffsetPage:
        """Page number ``page`` (from 1); ``with_total`` also counts the matching rows."""
        query, params, count, count_params = self.statements(
            page=page, per_page=per_page, where=where
        )
        total = None
        async with conn.cursor(row_factory=dict_row) as cur:
            rows = await (await cur.execute(query, params)).fetchall()
            if with_total:
                found = await (await cur.execute(count, count_params)).fetchone()
                total = int(found["count"]) if found else 0
        return self._page(rows, page, per_page, total)
