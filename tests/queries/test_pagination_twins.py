"""The two pagination twins together: the same pages from both, and ``fetch_async``, the
deprecated way to the async one.

Hand-written: each test needs both twins. The rest of the pagination tests come from
``test_pagination_async.py`` (tools/async_to_sync.py)."""

from __future__ import annotations

import pytest

from perfkit.queries import (
    AsyncKeysetPagination,
    AsyncOffsetPagination,
    AsyncTimedPool,
    KeysetPagination,
    OffsetPagination,
    TimedPool,
)
from tests.queries.test_pagination import TABLE, make_table  # the generated module's


async def test_async_pagination_matches_sync(apool: AsyncTimedPool, pool: TimedPool) -> None:
    keyset = KeysetPagination(TABLE, ["price"], sort_key="price")
    offset = OffsetPagination(TABLE, ["price"], order_by=["price", "id"])
    akeyset = AsyncKeysetPagination(TABLE, ["price"], sort_key="price")
    aoffset = AsyncOffsetPagination(TABLE, ["price"], order_by=["price", "id"])
    with pool.connection() as conn:
        make_table(conn, 30)
        sync_keyset = keyset.fetch(conn, limit=8)
        sync_next = keyset.fetch(conn, after=sync_keyset.next_cursor, limit=8)
        sync_offset = offset.fetch(conn, page=2, per_page=8, with_total=True)
    async with apool.connection() as aconn:
        async_keyset = await akeyset.fetch(aconn, limit=8)
        async_next = await akeyset.fetch(aconn, after=async_keyset.next_cursor, limit=8)
        async_offset = await aoffset.fetch(aconn, page=2, per_page=8, with_total=True)
    assert async_keyset == sync_keyset
    assert async_next == sync_next
    assert async_offset == sync_offset


async def test_fetch_async_is_a_deprecated_alias_of_the_async_twins_fetch(
    apool: AsyncTimedPool, pool: TimedPool
) -> None:
    keyset = KeysetPagination(TABLE, ["price"], sort_key="price")
    offset = OffsetPagination(TABLE, ["price"], order_by=["price", "id"])
    with pool.connection() as conn:
        make_table(conn, 12)
        expected_keyset = keyset.fetch(conn, limit=5)
        expected_offset = offset.fetch(conn, page=2, per_page=5, with_total=True)
    async with apool.connection() as aconn:
        with pytest.warns(DeprecationWarning, match=r"AsyncKeysetPagination\(\.\.\.\)\.fetch"):
            assert await keyset.fetch_async(aconn, limit=5) == expected_keyset
        with pytest.warns(DeprecationWarning, match=r"AsyncOffsetPagination\(\.\.\.\)\.fetch"):
            found = await offset.fetch_async(aconn, page=2, per_page=5, with_total=True)
    assert found == expected_offset
