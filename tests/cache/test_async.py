"""AsyncRedisService does what RedisService does (it is the source the sync one is made from)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from perfkit.cache import AsyncRedisService, RedisService

# Each test twice: reads sent on the pool directly, and through execute_command.
pytestmark = pytest.mark.usefixtures("read_lane")

ROOT = Path(__file__).resolve().parents[2]


async def test_round_trip_batch_and_delete(acache: AsyncRedisService) -> None:
    await acache.set("a", {"x": 1})
    await acache.set("n", None)
    await acache.set_many({"b": 2, "c": 3}, tags=["t"])
    assert await acache.get("a") == {"x": 1}
    assert await acache.get("n", "default") is None
    assert await acache.get_many(["a", "b", "c", "zz"]) == {"a": {"x": 1}, "b": 2, "c": 3}
    assert await acache.exists("b")
    assert await acache.delete("a", "b") == 2
    await acache.invalidate_tags(["t"])
    assert await acache.get_many(["a", "b", "c"]) == {}


async def test_ttl_and_patterns(
    acache: AsyncRedisService, redis_client: redis.Redis, namespace: str
) -> None:
    await acache.set("forever", 1, ttl=0)
    await acache.set("p:1", 1, ttl=30)
    await acache.set("p:2", 2)
    assert redis_client.pttl(f"{namespace}:forever") == -1
    assert 0 < redis_client.pttl(f"{namespace}:p:1") <= 30_000
    assert await acache.invalidate_pattern("p:*") == 2
    assert await acache.get_many(["forever", "p:1", "p:2"]) == {"forever": 1}


async def test_bad_value_writes_nothing(acache: AsyncRedisService) -> None:
    with pytest.raises(TypeError, match="for key 'bad'"):
        await acache.set_many({"ok": 1, "bad": object()})
    assert await acache.get_many(["ok", "bad"]) == {}


async def test_get_or_set_and_metrics(acache: AsyncRedisService) -> None:
    calls: list[int] = []

    async def loader() -> int:
        calls.append(1)
        return 7

    assert await acache.get_or_set("g", loader) == 7
    assert await acache.cached_query("g", loader) == 7
    assert calls == [1]
    metrics = await acache.stats()
    assert (metrics.hits, metrics.misses, metrics.sets) == (1, 1, 1)


async def test_async_and_sync_services_share_entries(
    acache: AsyncRedisService, cache: RedisService
) -> None:
    await acache.set("shared", [1, 2], tags=["t"])
    assert cache.get("shared") == [1, 2]
    cache.invalidate_tags(["t"])
    assert await acache.get("shared") is None
