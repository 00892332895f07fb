"""The operation pipeline (cache/_ops.py): touch, the counters derived from CacheStats,
the Redis-down policy table, and the hit path's inlined lane deciding as the layers do."""

from __future__ import annotations

import typing

import pytest
import redis

from perfkit._stat_kinds import CounterField
from perfkit.cache import AsyncRedisService, CacheStats, RedisService
from perfkit.cache._aio import _NO_TAGS
from perfkit.cache._ops import OPERATIONS, Down
from perfkit.cache._stats import COUNTED, CacheCounters
from perfkit.cache._sync import _NO_TAGS as _SYNC_NO_TAGS
from tests._servers import PrivateRedis
from tests.cache.conftest import TEST_SETTINGS

# -- touch ------------------------------------------------------------------------------------


def test_touch_resets_the_ttl_without_rewriting_the_value(cache: RedisService) -> None:
    cache.set("k", {"v": 1}, ttl=5)
    assert cache.client.pttl(cache._key("k")) <= 5000
    assert cache.touch("k", 600) is True
    assert 595_000 < cache.client.pttl(cache._key("k")) <= 600_000
    assert cache.get("k") == {"v": 1}
    assert cache.touch("absent", 600) is False
    assert cache.client.exists(cache._key("absent")) == 0
    assert cache.stats().touches == 1  # the keys that existed
    assert cache.touch("k", 0) is True  # no expiry
    assert cache.client.pttl(cache._key("k")) == -1
    assert cache.touch("k") is True  # the default ttl
    assert 0 < cache.client.pttl(cache._key("k")) <= cache.default_ttl * 1000


def test_touch_keeps_the_tags_generation_keys_outliving_the_entry(cache: RedisService) -> None:
    cache.set("k", 1, ttl=5, tags=["t", "u"])
    tag_keys = [cache._tag_prefix + tag for tag in ("t", "u")]
    assert all(cache.client.pttl(key) <= 65_000 for key in tag_keys)
    assert cache.touch("k", 600)
    entry_ms = cache.client.pttl(cache._key("k"))
    assert all(cache.client.pttl(key) > entry_ms + 55_000 for key in tag_keys)
    assert cache.get("k") == 1
    assert cache.touch("k", 0)
    assert [cache.client.pttl(key) for key in [cache._key("k"), *tag_keys]] == [-1, -1, -1]
    # A touch never shortens a tag's life that another entry needs (PEXPIRE .. GT).
    cache.set("long", 2, ttl=0, tags=["t"])
    cache.set("short", 3, ttl=5, tags=["t"])
    assert cache.touch("short", 10)
    assert cache.client.pttl(tag_keys[0]) == -1
    cache.invalidate_tags(["t"])
    assert cache.touch("k", 600) is True  # the key is there, though no longer served
    assert cache.get("k", "miss") == "miss"


async def test_async_touch(acache: AsyncRedisService) -> None:
    await acache.set("k", "v", ttl=5, tags=["t"])
    assert await acache.touch("k", 600) is True
    assert await acache.touch("absent", 600) is False
    assert await acache.get("k") == "v"
    assert (await acache.stats()).touches == 1
    assert 595_000 < await acache.client.pttl(acache._key("k")) <= 600_000
    assert await acache.client.pttl(acache._tag_prefix + "t") > 655_000
    assert await acache.touch("k", 0) is True
    assert await acache.client.pttl(acache._key("k")) == -1


def test_touch_while_redis_is_down_answers_from_memory_and_replays_nothing(
    private_redis: PrivateRedis,
) -> None:
    cache = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    try:
        cache.set("in redis", 1)
        private_redis.kill()
        assert cache.touch("in redis", 60) is False  # not in the memory store
        assert cache.fallback_active
        cache.set("in memory", 2)
        pending = set(cache._memory.pending.keys)
        assert cache.touch("in memory", 60) is True
        assert cache.touch("absent", 60) is False
        assert cache._memory.pending.keys == pending  # a touch is nothing to replay
        assert cache.get("in memory") == 2
    finally:
        cache.close()
        private_redis.start()


async def test_async_touch_while_redis_is_down(private_redis: PrivateRedis) -> None:
    cache = AsyncRedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    try:
        private_redis.kill()
        await cache.set("in memory", 2)
        assert await cache.touch("in memory", 60) is True
        assert await cache.touch("absent", 60) is False
        assert cache.fallback_active
    finally:
        await cache.close()
        private_redis.start()


def test_a_refused_touch_is_false_and_counted(private_redis: PrivateRedis) -> None:
    admin = redis.Redis.from_url(private_redis.url)
    admin.set("app:k", b"\x00\x01")
    # A user that may not run PEXPIRE: the touch is refused, not raised.
    admin.acl_setuser("nope", enabled=True, passwords=["+pw"], commands=["+@all", "-pexpire"],
                      keys=["~*"])  # fmt: skip
    url = private_redis.url.replace("redis://", "redis://nope:pw@")
    cache = RedisService(url, namespace="app", settings=TEST_SETTINGS)
    try:
        assert cache.touch("k", 60) is False
        stats = cache.stats()
        assert (stats.errors, stats.touches, cache.fallback_active) == (1, 0, False)
    finally:
        cache.close()
        admin.close()


# -- counters ---------------------------------------------------------------------------------


def test_every_counter_field_is_counted_by_name() -> None:
    hints = typing.get_type_hints(CacheStats, include_extras=True)
    counters = {
        name for name, hint in hints.items() if isinstance(hint.__metadata__[0], CounterField)
    }
    assert set(COUNTED) == counters - {"hits", "misses", "l1_hits", "l1_flushes"}
    stats = CacheCounters()
    stats.count(**dict.fromkeys(COUNTED, 2))
    assert stats.counted() == dict.fromkeys(COUNTED, 2)
    # No __getattr__ serving them as attributes: a class with one loses CPython's attribute
    # specialization on every read of its instances, and lookup() runs on every hit
    # (callgrind: ~2,600 instructions per async Redis hit).
    assert not hasattr(CacheCounters, "__getattr__")
    with pytest.raises(KeyError, match="hits"):
        stats.count(hits=1)  # a lookup is counted by lookup(), timed
    stats.reset()
    assert stats.counted() == dict.fromkeys(COUNTED, 0)


def test_each_operation_adds_to_a_counter_it_declares() -> None:
    for operation in OPERATIONS:
        assert operation.adds is None or operation.adds in operation.counters
        assert set(operation.counters) <= {"hits", "misses", *COUNTED}


# -- the Redis-down policy ------------------------------------------------------------------


def test_every_change_is_replayed_and_nothing_that_only_reads() -> None:
    # docs/cache.md's copy of policy_table() is checked by tests/tools/test_generated_docs.py.
    replayed = {operation.name for operation in OPERATIONS if operation.down is Down.REPLAY}
    # Every change is replayed; nothing that only reads is.
    assert replayed == {"set", "set_many", "delete", "invalidate_tags", "invalidate_pattern",
                        "clear"}  # fmt: skip


# -- the inlined lane of a Redis hit ----------------------------------------------------------


def _lookups(cache: RedisService, key: str) -> tuple[object, object]:
    """What the hit path's inlined lookup and the pipeline's (``_apply``) answer for ``key``."""
    full = cache._key(key)

    def plain(entry: object) -> object:
        return None if entry is None else (bytes(entry[0]), list(entry[1]))  # type: ignore[index]

    return plain(cache._lookup_one(full, _SYNC_NO_TAGS)), plain(cache._lookup([full])[0])


def test_the_inlined_lookup_decides_as_the_pipeline(private_redis: PrivateRedis) -> None:
    assert _NO_TAGS.tags == _SYNC_NO_TAGS.tags == ()
    admin = redis.Redis.from_url(private_redis.url)
    cache = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    try:
        cache.set("plain", 1)
        cache.set("tagged", 2, tags=["t"])
        cache.set("invalidated", 3, tags=["u"])
        cache.invalidate_tags(["u"])
        admin.set("app:foreign", b"not perfkit's")
        keys = ["plain", "tagged", "invalidated", "foreign", "absent"]
        up = [_lookups(cache, key) for key in keys]
        assert all(inlined == layered for inlined, layered in up)
        assert [inlined is not None for inlined, _ in up] == [True, True, False, False, False]
        errors = cache.stats().errors
        private_redis.kill()
        cache.get("plain")  # falls back
        cache.set("plain", 4)
        down = [_lookups(cache, key) for key in keys]
        assert all(inlined == layered for inlined, layered in down)
        assert [inlined is not None for inlined, _ in down] == [True, False, False, False, False]
        assert cache.stats().errors > errors
    finally:
        cache.close()
        admin.close()
        private_redis.start()


def test_a_refused_lookup_is_a_miss_on_both_lanes(private_redis: PrivateRedis) -> None:
    admin = redis.Redis.from_url(private_redis.url)
    admin.set("app:secret", b"\x00\x01")
    # A user that may read only the app:ok* keys: an MGET of app:secret is refused.
    admin.acl_setuser("reader", enabled=True, passwords=["+pw"], commands=["+@all"],
                      keys=["~app:ok*"])  # fmt: skip
    url = private_redis.url.replace("redis://", "redis://reader:pw@")
    cache = RedisService(url, namespace="app", settings=TEST_SETTINGS)
    try:
        assert _lookups(cache, "secret") == (None, None)
        stats = cache.stats()
        assert (stats.errors, cache.fallback_active) == (2, False)  # one per lane
    finally:
        cache.close()
        admin.close()
