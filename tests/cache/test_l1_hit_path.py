"""The L1 hit path: no lock, safe next to concurrent writers and invalidations."""

from __future__ import annotations

import asyncio
import threading

from perfkit.cache import AsyncRedisService, NearCache, cached_query
from perfkit.cache._codec import MISSING
from tests._servers import PrivateRedis
from tests.cache.conftest import TEST_SETTINGS


def _filled(count: int) -> NearCache:
    near = NearCache(max_entries=count * 2)
    near.clear(enabled=True)
    for i in range(count):
        near.put(f"ns:k{i}", None, i, [("t", b"g1")], 8, near.epoch)
    near.learn({"t": b"g1"}, near.epoch)
    return near


def test_a_hit_does_not_wait_for_the_lock() -> None:
    near = _filled(1)
    results: list[object] = []
    with near._lock:  # a writer holding the lock (a put, an invalidation push...)
        reader = threading.Thread(target=lambda: results.append(near.get("ns:k0", None)))
        reader.start()
        reader.join(5)
        assert not reader.is_alive()
    assert results == [0]


def test_hits_race_invalidations_without_errors_or_stale_values() -> None:
    near = _filled(200)
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                for i in range(200):
                    value = near.get(f"ns:k{i}", None)
                    if value is not MISSING and value != i:
                        raise AssertionError(f"k{i} served {value!r}")
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for round_ in range(50):
            # Invalidations that iterate or reorder the dict while readers move entries.
            near.evict_matching("ns:k1*")
            near.evict([f"ns:k{round_}"])
            for i in range(200):
                near.put(f"ns:k{i}", None, i, [("t", b"g1")], 8, near.epoch)
            # Once an eviction returns, no reader gets the evicted value any more.
            near.evict(["ns:k7"])
            assert near.get("ns:k7", None) is MISSING
            near.forget_tags(["t"])
            assert near.get("ns:k8", None) is MISSING
            near.learn({"t": b"g1"}, near.epoch)
    finally:
        stop.set()
        for reader in readers:
            reader.join(10)
    assert errors == []
    assert near.hits > 0


def test_an_expired_or_retagged_entry_is_dropped_on_read() -> None:
    near = _filled(2)
    near.learn({"t": b"g2"}, near.epoch)  # the tag moved on
    assert near.get("ns:k0", None) is MISSING
    assert len(near) == 1  # dropped, not only skipped


async def test_l1_hits_are_counted_as_hits_when_metrics_are_read(
    private_redis: PrivateRedis,
) -> None:
    cache = AsyncRedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS, l1=True)
    assert await asyncio.to_thread(cache.wait_l1_ready)

    @cached_query(ttl=60, tags=["t"], cache=cache)
    async def square(n: int) -> int:
        return n * n

    await cache.set("k", "v")
    await square(3)  # a miss, loaded
    for _ in range(3):  # until our own writes' pushes have passed and L1 holds both
        await asyncio.sleep(0.05)
        await cache.get("k")
        await square(3)
    cache.reset_stats()
    before = (await cache.stats()).l1_hits
    for _ in range(50):
        assert await cache.get("k") == "v"
        assert await square(3) == 9
    metrics = await cache.stats()
    assert metrics.l1_hits - before == 100
    assert (metrics.hits, metrics.misses) == (100, 0)
    cache.reset_stats()
    assert (await cache.stats()).hits == 0
    await cache.close()


def test_a_hit_after_hits_still_sees_its_tag_move_on() -> None:
    # Hits skip comparing tags while no generation changed since they last matched: a
    # change after many hits (a new generation learned, a tag forgotten) still misses.
    near = _filled(2)
    for _ in range(3):
        assert near.get("ns:k0", None) == 0
        assert near.get("ns:k1", None) == 1
    version = near.gens_version
    near.learn({"t": b"g1"}, near.epoch)  # the same generation again: nothing changed
    assert near.gens_version == version
    assert near.get("ns:k0", None) == 0
    near.learn({"t": b"g2"}, near.epoch)
    assert near.get("ns:k0", None) is MISSING
    near.put("ns:k0", None, 0, [("t", b"g2")], 8, near.epoch)
    assert near.get("ns:k0", None) == 0
    near.forget_tags(["t"])
    assert near.get("ns:k0", None) is MISSING
    assert near.get("ns:k1", None) is MISSING
