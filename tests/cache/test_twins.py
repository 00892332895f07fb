"""RedisService and AsyncRedisService together: one process may use both on the same data.

Hand-written: each twin's own tests are generated from the async ones (``test_*_async.py``,
tools/async_to_sync.py); this one needs both twins at once."""

from __future__ import annotations

import pytest

from perfkit.cache import AsyncRedisService, RedisService

# Each test twice: reads sent on the pool directly, and through execute_command.
pytestmark = pytest.mark.usefixtures("read_lane")


async def test_async_and_sync_services_share_entries(
    acache: AsyncRedisService, cache: RedisService
) -> None:
    await acache.set("shared", [1, 2], tags=["t"])
    assert cache.get("shared") == [1, 2]
    cache.invalidate_tags(["t"])
    assert await acache.get("shared") is None
