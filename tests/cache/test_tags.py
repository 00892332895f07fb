# Generated from test_tags_async.py by tools/async_to_sync.py: do not edit.
"""Tag invalidation: O(1) per tag, every tag checked, generations that outlive their entries.

Written once, for both services: ``test_tags.py`` is generated from
``test_tags_async.py`` (tools/async_to_sync.py). Loaders
racing an invalidation are in ``test_tag_races.py``, in each twin's own concurrency."""

from __future__ import annotations

import pytest
import redis

from perfkit.cache import RedisService
from tests.cache.conftest import TEST_SETTINGS


def test_invalidating_a_tag_misses_every_entry_it_guards(cache: RedisService) -> None:
    cache.set("p1", 1, tags=["products", "category:1"])
    cache.set("p2", 2, tags=["products", "category:2"])
    cache.set("u1", 3, tags=["users"])
    cache.set("plain", 4)
    cache.invalidate_tags(["category:1"])
    assert cache.get_many(["p1", "p2", "u1", "plain"]) == {"p2": 2, "u1": 3, "plain": 4}
    cache.invalidate_tags(["products"])
    assert cache.get_many(["p1", "p2", "u1", "plain"]) == {"u1": 3, "plain": 4}
    # A new value under the same tag is served again.
    cache.set("p1", 10, tags=["products"])
    assert cache.get("p1") == 10


def test_invalidation_cost_does_not_depend_on_tagged_keys(
    cache: RedisService, redis_client: redis.Redis, namespace: str
) -> None:
    cache.set_many({f"k{i}": i for i in range(5000)}, tags=["big"])
    commands_before = redis_client.info("commandstats").get("cmdstat_del", {}).get("calls", 0)
    keys_before = redis_client.dbsize()
    cache.invalidate_tags(["big"])
    commands_after = redis_client.info("commandstats").get("cmdstat_del", {}).get("calls", 0)
    # One DEL of the tag's generation key, nothing per tagged entry.
    assert commands_after - commands_before <= 2  # other tests may DEL concurrently
    assert redis_client.dbsize() >= keys_before - 1 - 10
    assert cache.get_many([f"k{i}" for i in range(0, 5000, 250)]) == {}


def test_stale_entry_is_replaced_on_the_next_fill(cache: RedisService) -> None:
    cache.set("p", 1, tags=["t"])
    cache.invalidate_tags(["t"])
    assert cache.get("p") is None
    assert cache.get_or_set("p", lambda: 2, tags=["t"]) == 2
    assert cache.get("p") == 2


def test_entry_read_with_other_tags_than_written_is_still_checked(cache: RedisService) -> None:
    cache.set("p", 1, tags=["a", "b"])
    # The caller expects tag "c" but the entry carries "a" and "b": those are checked.
    assert cache.get_or_set("p", lambda: 9, tags=["c"]) == 1
    cache.invalidate_tags(["b"])
    assert cache.get_or_set("p", lambda: 9, tags=["c"]) == 9  # the header comparison


# other order: parsed and checked tag by tag
# fewer tags than written
# more tags than written
# format characters in tags


@pytest.mark.parametrize(
    ("written", "read"),
    [
        (["a", "b"], ["a", "b"]),
        (["a", "b"], ["b", "a"]),
        (["a", "b"], ["a"]),
        (["a"], ["a", "b"]),
        (["100%", "%b%s"], ["100%", "%b%s"]),
    ],
)
def test_hit_is_checked_against_every_tag_it_was_written_with(
    cache: RedisService, written: list[str], read: list[str]
) -> None:
    for tag in written:
        cache.delete("p")
        assert cache.get_or_set("p", lambda: 1, tags=written) == 1
        assert cache.get_or_set("p", lambda: 2, tags=read) == 1  # a hit
        cache.invalidate_tags([tag])
        assert cache.get_or_set("p", lambda: 3, tags=read) == 3  # a miss


def test_lost_generation_key_never_revives_old_entries(
    cache: RedisService, redis_client: redis.Redis, namespace: str
) -> None:
    cache.set("p", 1, tags=["t"])
    # As if Redis evicted the tag's generation key under memory pressure.
    redis_client.delete(f"{namespace}:__perfkit__:tag:t")
    assert cache.get("p") is None
    cache.set("p", 2, tags=["t"])
    assert cache.get("p") == 2


def test_plain_set_after_invalidation_is_served(cache: RedisService) -> None:
    cache.invalidate_tags(["t"])
    cache.set("k", "v", tags=["t"])
    assert cache.get("k") == "v"


@pytest.mark.parametrize("other_process_writes", [False, True])
def test_invalidation_reaches_other_services(
    cache: RedisService, redis_url: str, namespace: str, other_process_writes: bool
) -> None:
    other = RedisService(redis_url, namespace=namespace, settings=TEST_SETTINGS)
    try:
        writer, reader = (other, cache) if other_process_writes else (cache, other)
        writer.set("p", 1, tags=["t"])
        assert reader.get("p") == 1
        writer.invalidate_tags(["t"])
        assert reader.get("p") is None
    finally:
        other.close()


def test_huge_tagged_batch_neither_times_out_nor_falls_back(cache: RedisService) -> None:
    # 0.3 s socket timeout (TEST_SETTINGS): one script for all 20 000 keys would outlast it.
    cache.set_many({f"big:{i}": i for i in range(20000)}, tags=["bulk"])
    metrics = cache.stats()
    assert not metrics.fallback_active and metrics.errors == 0
    assert metrics.sets == 20000
    assert cache.get_many([f"big:{i}" for i in range(0, 20000, 1000)]) == {
        f"big:{i}": i for i in range(0, 20000, 1000)
    }


def test_tag_generations_outlive_their_entries_and_then_expire(cache: RedisService) -> None:
    # On one server and on a cluster (where the generations are made outside a script).
    cache.set("a", 1, ttl=5, tags=["written"])
    cache.get_or_set("b", lambda: 2, ttl=5, tags=["loaded"])
    for tag in ("written", "loaded"):
        assert 5000 < cache.client.pttl(cache._tag_prefix + tag) <= 65000
    cache.set("c", 3, ttl=600, tags=["written"])
    assert cache.client.pttl(cache._tag_prefix + "written") > 600000
    cache.set("d", 4, ttl=0, tags=["loaded"])  # no expiry: nor for its tag
    assert cache.client.pttl(cache._tag_prefix + "loaded") == -1
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2, "c": 3, "d": 4}
