"""The two pagination twins together: the same pages from both.

Hand-written: each test needs both twins. The rest of the pagination tests come from
``test_pagination_async.py`` (tools/async_to_sync.py)."""

from __future__ import annotations

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
