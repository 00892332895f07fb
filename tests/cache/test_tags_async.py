"""Tag invalidation: O(1) per tag, every tag checked, generations that outlive their entries.

Written once, for both services: ``test_tags.py`` is generated from
``test_tags_async.py`` (tools/async_to_sync.py). Loaders
racing an invalidation are in ``test_tag_races.py``, in each twin's own concurrency."""

from __future__ import annotations

import pytest
import redis

from perfkit.cache import AsyncRedisService
from tests.cache.conftest import TEST_SETTINGS


async def test_invalidating_a_tag_misses_every_entry_it_guards(acache: AsyncRedisService) -> None:
    await acache.set("p1", 1, tags=["products", "category:1"])
    await acache.set("p2", 2, tags=["products", "category:2"])
    await acache.set("u1", 3, tags=["users"])
    await acache.set("plain", 4)
    await acache.invalidate_tags(["category:1"])
    assert await acache.get_many(["p1", "p2", "u1", "plain"]) == {"p2": 2, "u1": 3, "plain": 4}
    await acache.invalidate_tags(["products"])
    assert await acache.get_many(["p1", "p2", "u1", "plain"]) == {"u1": 3, "plain": 4}
    # A new value under the same tag is served again.
    await acache.set("p1", 10, tags=["products"])
    assert await acache.get("p1") == 10


async def test_invalidation_cost_does_not_depend_on_tagged_keys(
    acache: AsyncRedisService, redis_client: redis.Redis, namespace: str
) -> None:
    await acache.set_many({f"k{i}": i for i in range(5_000)}, tags=["big"])
    commands_before = redis_client.info("commandstats").get("cmdstat_del", {}).get("calls", 0)
    keys_before = redis_client.dbsize()
    await acache.invalidate_tags(["big"])
    commands_after = redis_client.info("commandstats").get("cmdstat_del", {}).get("calls", 0)
    # One DEL of the tag's generation key, nothing per tagged entry.
    assert commands_after - commands_before <= 2  # other tests may DEL concurrently
    assert redis_client.dbsize() >= keys_before - 1 - 10
    assert await acache.get_many([f"k{i}" for i in range(0, 5_000, 250)]) == {}


async def test_stale_entry_is_replaced_on_the_next_fill(acache: AsyncRedisService) -> None:
    await acache.set("p", 1, tags=["t"])
    await acache.invalidate_tags(["t"])
    assert await acache.get("p") is None
    assert await acache.get_or_set("p", lambda: 2, tags=["t"]) == 2
    assert await acache.get("p") == 2


async def test_entry_read_with_other_tags_than_written_is_still_checked(
    acache: AsyncRedisService,
) -> None:
    await acache.set("p", 1, tags=["a", "b"])
    # The caller expects tag "c" but the entry carries "a" and "b": those are checked.
    assert await acache.get_or_set("p", lambda: 9, tags=["c"]) == 1
    await acache.invalidate_tags(["b"])
    assert await acache.get_or_set("p", lambda: 9, tags=["c"]) == 9


@pytest.mark.parametrize(
    ("written", "read"),
    [
        (["a", "b"], ["a", "b"]),  # the header comparison
        (["a", "b"], ["b", "a"]),  # other order: parsed and checked tag by tag
        (["a", "b"], ["a"]),  # fewer tags than written
        (["a"], ["a", "b"]),  # more tags than written
        (["100%", "%b%s"], ["100%", "%b%s"]),  # format characters in tags
    ],
)
async def test_hit_is_checked_against_every_tag_it_was_written_with(
    acache: AsyncRedisService, written: list[str], read: list[str]
) -> None:
    for tag in written:
        await acache.delete("p")
        assert await acache.get_or_set("p", lambda: 1, tags=written) == 1
        assert await acache.get_or_set("p", lambda: 2, tags=read) == 1  # a hit
        await acache.invalidate_tags([tag])
        assert await acache.get_or_set("p", lambda: 3, tags=read) == 3  # a miss


async def test_lost_generation_key_never_revives_old_entries(
    acache: AsyncRedisService, redis_client: redis.Redis, namespace: str
) -> None:
    await acache.set("p", 1, tags=["t"])
    # As if Redis evicted the tag's generation key under memory pressure.
    redis_client.delete(f"{namespace}:__perfkit__:tag:t")
    assert await acache.get("p") is None
    await acache.set("p", 2, tags=["t"])
    assert await acache.get("p") == 2


async def test_plain_set_after_invalidation_is_served(acache: AsyncRedisService) -> None:
    await acache.invalidate_tags(["t"])
    await acache.set("k", "v", tags=["t"])
    assert await acache.get("k") == "v"


@pytest.mark.parametrize("other_process_writes", [False, True])
async def test_invalidation_reaches_other_services(
    acache: AsyncRedisService, redis_url: str, namespace: str, other_process_writes: bool
) -> None:
    other = AsyncRedisService(redis_url, namespace=namespace, settings=TEST_SETTINGS)
    try:
        writer, reader = (other, acache) if other_process_writes else (acache, other)
        await writer.set("p", 1, tags=["t"])
        assert await reader.get("p") == 1
        await writer.invalidate_tags(["t"])
        assert await reader.get("p") is None
    finally:
        await other.close()


async def test_huge_tagged_batch_neither_times_out_nor_falls_back(
    acache: AsyncRedisService,
) -> None:
    # 0.3 s socket timeout (TEST_SETTINGS): one script for all 20 000 keys would outlast it.
    await acache.set_many({f"big:{i}": i for i in range(20_000)}, tags=["bulk"])
    metrics = await acache.stats()
    assert not metrics.fallback_active and metrics.errors == 0
    assert metrics.sets == 20_000
    assert await acache.get_many([f"big:{i}" for i in range(0, 20_000, 1_000)]) == {
        f"big:{i}": i for i in range(0, 20_000, 1_000)
    }


async def test_tag_generations_outlive_their_entries_and_then_expire(
    acache: AsyncRedisService,
) -> None:
    # On one server and on a cluster (where the generations are made outside a script).
    await acache.set("a", 1, ttl=5, tags=["written"])
    await acache.get_or_set("b", lambda: 2, ttl=5, tags=["loaded"])
    for tag in ("written", "loaded"):
        assert 5_000 < await acache.client.pttl(acache._tag_prefix + tag) <= 65_000
    await acache.set("c", 3, ttl=600, tags=["written"])
    assert await acache.client.pttl(acache._tag_prefix + "written") > 600_000
    await acache.set("d", 4, ttl=0, tags=["loaded"])  # no expiry: nor for its tag
    assert await acache.client.pttl(acache._tag_prefix + "loaded") == -1
    assert await acache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2, "c": 3, "d": 4}
