# Generated from test_hostile_async.py by tools/async_to_sync.py: do not edit.
"""A Redis that answers, but badly: full, read-only, a key of the wrong type, bytes another
client wrote, invalidation pushes that cannot be read, changes made while it was stalled.
Each test reproduces one failure of issue #12 through the public API, on a private server.

Written once, for both services: ``test_hostile.py`` is generated from
``test_hostile_async.py`` (tools/async_to_sync.py)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
import redis

from perfkit.cache import RedisService, cached_query
from tests._servers import EchoServer, PrivateRedis
from tests.cache.conftest import TEST_SETTINGS, eventually, reads


@pytest.fixture
def raw(private_redis: PrivateRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(private_redis.url)
    yield client
    client.close()


def fill_up(raw: redis.Redis) -> None:
    """maxmemory reached with noeviction: every write that needs memory is refused."""
    raw.config_set("maxmemory-policy", "noeviction")
    raw.config_set("maxmemory", 1)


def demote(raw: redis.Redis) -> None:
    """A primary demoted during a failover: a replica of a primary it cannot reach keeps its
    data and answers READONLY to every write."""
    raw.execute_command("REPLICAOF", "127.0.0.1", "1")


def test_full_redis_loads_and_refused_writes_never_serve_the_old_value(
    private_redis: PrivateRedis, raw: redis.Redis
) -> None:
    cache = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    cache.set("k", "old")
    cache.set("p", "old price", tags=["product:1"])

    @cached_query(ttl=60, tags=["product:{pid}"], cache=cache)
    def price(pid: int) -> int:
        return pid * 100

    fill_up(raw)
    # Misses run the loader (the lock script is refused): no OutOfMemoryError.
    assert cache.get_or_set("fresh", lambda: 1) == 1
    assert cache.get_or_set("tagged", lambda: 2, tags=["product:1"]) == 2
    assert price(7) == 700
    assert cache.get("k") == "old"  # reads still answer
    # A refused overwrite deletes the old entry (a full Redis still deletes).
    cache.set("k", "new")
    assert cache.get("k", "miss") == "miss"
    assert raw.exists("app:k") == 0
    # (A script that already wrote may go on writing: then the new value is there.)
    cache.set_many({"p": "new price"}, tags=["product:1"])
    assert cache.get("p", "miss") in ("miss", "new price")
    cache.invalidate_tags(["product:1"])
    assert cache.stats().errors >= 3
    cache.close()


@pytest.mark.parametrize("l1", [False, True])
def test_read_only_redis_blocks_refused_changes_until_applied(
    private_redis: PrivateRedis, raw: redis.Redis, l1: bool
) -> None:
    cache = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS, l1=l1)
    other = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)

    def others_miss_gone_and_p() -> bool:
        return other.get("gone", "miss") == other.get("p", "miss") == "miss"

    def back_to_redis() -> bool:
        return not cache.stats().fallback_active and cache.get("x", 1) == 1

    if l1:
        assert cache.wait_l1_ready()
    cache.set("k", "old")
    cache.set("gone", "old")
    cache.set("p", "old price", tags=["product:1"])
    cache.set("q:1", "old q")
    for key in ("k", "gone", "p", "q:1"):  # in L1 too, when on
        assert cache.get(key) is not None
    demote(raw)
    cache.set("k", "new")  # READONLY, and the delete is refused too
    assert cache.delete("gone") == 0
    cache.invalidate_tags(["product:1"])
    assert cache.invalidate_pattern("q:*") == 0
    # This process never serves what it tried to replace.
    for key in ("k", "gone", "p", "q:1"):
        assert cache.get(key, "miss") == "miss"
        assert not cache.exists(key)
    assert cache.get_many(["k", "p"]) == {}
    assert cache.get_or_set("p", lambda: "loaded", tags=["product:1"]) == "loaded"
    # Another process still reads the old value from the demoted server: the documented
    # bound is until it is writable again (a failover's end).
    assert other.get("k") == "old"
    raw.execute_command("REPLICAOF", "NO", "ONE")
    # The background worker applies the changes within 2 s, with this process idle.
    waited = eventually(reads(other, "k", "miss"), timeout=5, pause=0.01)
    assert waited < 2.0 + 1.0  # the bound, plus slack for a loaded machine
    # Keys, tags, then patterns: each within the bound, in that order, not all at once.
    eventually(others_miss_gone_and_p)
    eventually(reads(other, "q:1", "miss"))
    eventually(back_to_redis)
    cache.set("k", "newest")
    assert cache.get("k") == "newest" and other.get("k") == "newest"
    cache.close()
    other.close()


def test_a_tag_key_of_another_type_is_a_miss_not_an_error(
    private_redis: PrivateRedis, raw: redis.Redis
) -> None:
    cache = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    raw.hset("app:__perfkit__:tag:t", "x", "y")  # WRONGTYPE for the scripts
    assert cache.get_or_set("k", lambda: 1, tags=["t"]) == 1
    assert cache.get_or_set("k", lambda: 2, tags=["t"]) == 2
    cache.set("k", 3, tags=["t"])
    assert cache.get("k", "miss") == "miss"
    cache.close()  # a key that is not UTF-8


# perfkit's header, not MessagePack after it
# a tag name that is not UTF-8
# no header at all
# a generation that is not UTF-8
FOREIGN = [
    (b"app:\xff\xfe", b"\x00\x01"),
    (b"app:bad-payload", b"\x00\xc1"),
    (b"app:bad-tag", b"\x01\xff\x1f1.2\x1d\x01"),
    (b"app:not-ours", b"hello"),
    (b"app:__perfkit__:tag:t", b"\xff\xfe"),
]


def test_foreign_bytes_are_misses_and_admin_paths_survive(
    private_redis: PrivateRedis, raw: redis.Redis
) -> None:
    cache = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS, l1=True)
    assert cache.wait_l1_ready()
    for key, value in FOREIGN:
        raw.set(key, value)
    # Written under that generation, which is still current: a value like any other.
    raw.set(b"app:bad-gen", b"\x01t\x1f\xff\xfe\x1d\x01")
    assert cache.get("bad-gen") == 1 and cache.exists("bad-gen")
    assert cache.get_many(["bad-payload", "bad-tag", "not-ours"]) == {}
    for key in ("bad-payload", "bad-tag", "not-ours"):
        assert cache.get(key, "miss") == "miss"
        assert cache.exists(key) is False  # agrees with get
        assert cache.get_or_set(key, lambda: 5) == 5
    assert cache.get_or_set("guarded", lambda: 6, tags=["t"]) == 6
    assert cache.get("guarded") == 6
    metrics = cache.stats()
    assert metrics.keys is not None and metrics.keys >= 4
    assert cache.invalidate_pattern("*") >= 4
    assert cache.clear() >= 1
    assert raw.dbsize() == 0
    cache.close()


def test_an_unreadable_push_flushes_the_near_cache(
    private_redis: PrivateRedis, raw: redis.Redis
) -> None:
    reader = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS, l1=True)

    def kept_or_invalidated() -> bool:
        return reader.stats().l1_entries == 1 or reader.get("k") is None

    def flushed() -> bool:
        return reader.stats().l1_flushes >= 1

    assert reader.wait_l1_ready()
    reader.set("k", "old")
    assert reader.get("k") == "old"
    eventually(kept_or_invalidated)
    # One push naming a key that is not UTF-8 and the real one.
    raw.mset({b"app:\xff": b"x", b"app:k": b"\x00" + b"\xa3new"})
    eventually(reads(reader, "k", "new"), timeout=2)
    # Counted by the listener thread, which may count it just after the read above.
    eventually(flushed, timeout=5)
    reader.close()


def test_changes_made_while_redis_stalled_reach_it_without_another_call(
    private_redis: PrivateRedis,
) -> None:
    writer = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    reader = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)

    def both_miss() -> bool:
        return reader.get("k", "miss") == reader.get("p", "miss") == "miss"

    def writer_recovered() -> bool:
        return not writer.fallback_active

    writer.set("k", "old")
    writer.set("p", "old", tags=["product:1"])
    pid = private_redis._process.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGSTOP)
    try:
        # The first command reaches the stalled server's socket (and runs when it resumes);
        # it times out, and the next ones are kept in memory.
        writer.set("x", 1)
        assert writer.fallback_active
        writer.delete("k")
        writer.invalidate_tags(["product:1"])
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed = time.perf_counter()
    # The writer makes no further call; its background worker applies the changes (the
    # async one's is a task: eventually leaves the loop free for it).
    eventually(both_miss, timeout=10)
    assert time.perf_counter() - resumed < 2.0 + 1.0
    eventually(writer_recovered, timeout=5)
    writer.close()
    reader.close()


def test_tag_generation_keys_expire_after_their_entries(
    private_redis: PrivateRedis, raw: redis.Redis
) -> None:
    cache = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    for i in range(50):
        cache.set(f"p:{i}", i, ttl=2, tags=[f"product:{i}"])
        cache.get_or_set(f"q:{i}", lambda: 1, ttl=2, tags=[f"query:{i}"])
    cache.set("forever", 1, ttl=0, tags=["pinned"])
    ttls = {key: raw.pttl(key) for key in raw.scan_iter(match=b"app:*")}
    permanent = sorted((key for key, ttl in ttls.items() if ttl < 0))
    assert permanent == [b"app:__perfkit__:tag:pinned", b"app:forever"]
    tag_ttls = [t for k, t in ttls.items() if b":tag:" in k and k != permanent[0]]
    assert len(tag_ttls) == 100 and all(2000 < t <= 62000 for t in tag_ttls)
    # A longer entry extends its tag; a shorter one never shortens it.
    cache.set("long", 1, ttl=600, tags=["product:1"])
    cache.set("short", 1, ttl=1, tags=["product:1"])
    assert raw.pttl("app:__perfkit__:tag:product:1") > 600000
    cache.close()


def test_a_generation_never_comes_back_after_its_key_expired(
    private_redis: PrivateRedis, raw: redis.Redis
) -> None:
    cache = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    cache.set("k", "v1", ttl=60, tags=["t"])
    first = raw.get("app:__perfkit__:tag:t")
    raw.delete("app:__perfkit__:tag:t")  # as if it expired or was evicted
    assert cache.get("k", "miss") == "miss"
    cache.set("other", 1, tags=["t"])
    assert raw.get("app:__perfkit__:tag:t") != first
    assert cache.get("k", "miss") == "miss"  # the old entry stays invalid
    cache.close()


def test_ttl_edges(private_redis: PrivateRedis, raw: redis.Redis) -> None:
    cache = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    cache.set("tiny", 1, ttl=0.0004)
    assert raw.pttl("app:tiny") in (-2, 0, 1)  # expiring, never "no expiry" (-1)
    for huge in (10**16, 1e16):
        with pytest.raises(ValueError, match="ttl must be at most"):
            cache.set("k", 1, ttl=huge)
        with pytest.raises(ValueError, match="ttl"):
            cache.get_or_set("k", lambda: 1, ttl=huge)
    cache.set("long", 1, ttl=10**12)
    assert raw.pttl("app:long") > 0
    cache.close()


def test_no_other_part_keeps_its_default_keys_in_the_cache_namespace(
    private_redis: PrivateRedis, raw: redis.Redis
) -> None:
    from perfkit.jobs.builtins.notify import NotificationPayload, RedisNotificationSink

    sink = RedisNotificationSink(private_redis.url)
    sink.deliver(NotificationPayload(user_id="u1", type="hello"))
    cache = RedisService(private_redis.url, settings=TEST_SETTINGS)  # default namespace
    cache.set("k", 1)
    assert cache.invalidate_pattern("*") == 1
    cache.set("k", 1)
    assert cache.clear() == 1
    assert raw.llen(f"{sink.prefix}:u1") == 1  # the user's notification survived
    cache.close()


def test_a_value_loaded_without_its_generations_is_not_stored(
    private_redis: PrivateRedis, raw: redis.Redis
) -> None:
    # Under OOM the lock script is refused, so the tags' generations are not read before
    # the loader runs; a script that extends a tag key first may still write after that.
    # Stored with the generations current at write time, the value could predate an
    # invalidation made while the loader ran: it goes to the caller only.
    cache = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    cache.set("other", 1, tags=["t"])  # the tag has a generation
    fill_up(raw)
    assert cache.get_or_set("k", lambda: "loaded", tags=["t"]) == "loaded"
    assert raw.exists("app:k") == 0
    cache.close()


def test_a_peer_that_sends_back_what_it_is_sent_is_an_outage() -> None:
    """A socket connected to itself answers the connection handshake with the handshake:
    redis-py raised ``AttributeError`` from reading it, into the app, and the L1 listener's
    thread died of it (L1 off for good). Now it is a connection error: reads and writes fall
    back to memory, and once a real Redis answers on that port, the service and its L1 are
    back on it."""
    echo = EchoServer()
    url = f"redis://127.0.0.1:{echo.port}/0"
    cache = RedisService(url, namespace="echo", settings=TEST_SETTINGS, l1=True)
    server: PrivateRedis | None = None
    try:
        cache.set("k", "kept in memory")
        assert cache.get("k") == "kept in memory"
        assert cache.stats().fallback_active
        time.sleep(1.0)  # the L1 listener tries, and is refused, several times
        assert cache.get("k") == "kept in memory"  # a probe that met the echo too
        echo.close()
        server = PrivateRedis(port=echo.port)

        def on_redis() -> bool:
            cache.get("k")
            return not cache.stats().fallback_active

        eventually(on_redis, timeout=10, pause=0.05)
        cache.set("k", "in Redis")
        with redis.Redis.from_url(url) as raw:
            assert raw.exists("echo:k")
        assert cache.wait_l1_ready(10)  # the listener lived through it
    finally:
        cache.close()
        echo.close()
        if server is not None:
            server.close()
