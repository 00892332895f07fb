"""Automatic pipelining in AsyncRedisService: concurrent reads coalesced into one MGET."""

from __future__ import annotations

import asyncio

import pytest
import redis

from perfkit.cache import AsyncRedisService
from tests._servers import PrivateRedis
from tests.cache.conftest import PATIENT_SETTINGS, TEST_SETTINGS


def _mget_calls(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_mget", {}).get("calls", 0))


@pytest.fixture
def admin(private_redis: PrivateRedis) -> redis.Redis:
    return redis.Redis.from_url(private_redis.url)


@pytest.mark.parametrize("auto_pipeline", [True, False])
async def test_concurrent_gets_share_one_mget(
    private_redis: PrivateRedis, admin: redis.Redis, auto_pipeline: bool
) -> None:
    # Patient: without pipelining the 65 reads open 65 connections, and a connect past 0.3 s
    # on a loaded machine would fall back to memory (not what this counts).
    cache = AsyncRedisService(
        private_redis.url, namespace="app", settings=PATIENT_SETTINGS, auto_pipeline=auto_pipeline
    )
    await cache.set_many({f"k{i}": i for i in range(64)})
    admin.config_resetstat()
    values = await asyncio.gather(*(cache.get(f"k{i}") for i in range(64)), cache.get("none", -1))
    assert values == [*range(64), -1]
    # One sent at once (nothing was in flight), the 64 others in one MGET.
    assert _mget_calls(admin) == (2 if auto_pipeline else 65)
    await cache.close()


async def test_lone_gets_are_sent_at_once(private_redis: PrivateRedis, admin: redis.Redis) -> None:
    cache = AsyncRedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    await cache.set("k", "v")
    admin.config_resetstat()
    for _ in range(20):
        assert await cache.get("k") == "v"
        assert await cache.get("none") is None
    assert _mget_calls(admin) == 40
    await cache.close()


async def test_tagged_reads_and_generation_checks_are_coalesced(
    private_redis: PrivateRedis, admin: redis.Redis
) -> None:
    cache = AsyncRedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    for i in range(32):
        await cache.get_or_set(f"k{i}", lambda i=i: i, tags=[f"t{i % 4}"])
    await cache.invalidate_tags(["t0"])
    admin.config_resetstat()
    loads = []

    def loader(i: int) -> int:
        loads.append(i)
        return -i

    values = await asyncio.gather(
        *(cache.get_or_set(f"k{i}", lambda i=i: loader(i), tags=[f"t{i % 4}"]) for i in range(32))
    )
    # The invalidated tag's entries are reloaded, the others served from one batch.
    assert values == [-i if i % 4 == 0 else i for i in range(32)]
    assert sorted(loads) == list(range(0, 32, 4))
    assert (await asyncio.gather(*(cache.get(f"k{i}") for i in range(32)))) == values
    await cache.close()


async def test_a_refused_batch_is_retried_per_caller(
    private_redis: PrivateRedis, admin: redis.Redis
) -> None:
    writer = AsyncRedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    await writer.set_many({"ok1": 1, "ok2": 2, "secret": 3})
    # A user that may read only the app:ok* keys: an MGET naming app:secret is refused whole.
    admin.acl_setuser("reader", enabled=True, passwords=["+pw"], commands=["+@all"])
    admin.execute_command("ACL", "SETUSER", "reader", "resetkeys", "~app:ok*")
    url = private_redis.url.replace("redis://", "redis://reader:pw@")
    cache = AsyncRedisService(url, namespace="app", settings=TEST_SETTINGS)
    values = await asyncio.gather(
        cache.get("ok1"), cache.get("ok2"), cache.get("secret", "refused"), cache.get("ok1")
    )
    assert values == [1, 2, "refused", 1]
    assert (await cache.stats()).errors == 1
    await cache.close()
    await writer.close()


async def test_an_outage_during_a_batch_degrades_every_caller(
    private_redis: PrivateRedis,
) -> None:
    cache = AsyncRedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    await cache.set_many({f"k{i}": i for i in range(16)})
    private_redis.kill()
    values = await asyncio.gather(*(cache.get(f"k{i}", "miss") for i in range(16)))
    assert values == ["miss"] * 16
    await cache.set("k1", "memory")
    assert await cache.get("k1") == "memory"
    await cache.close()


async def test_a_cancelled_caller_leaves_the_others_their_values(
    private_redis: PrivateRedis,
) -> None:
    cache = AsyncRedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    await cache.set_many({f"k{i}": i for i in range(8)})
    tasks = [asyncio.create_task(cache.get(f"k{i}")) for i in range(8)]
    await asyncio.sleep(0)  # every task has joined a batch (or sent its own MGET)
    tasks[3].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    assert [r for i, r in enumerate(results) if i != 3] == [0, 1, 2, 4, 5, 6, 7]
    await cache.close()


async def test_foreign_bytes_in_a_batch_are_a_miss_for_that_key_only(
    private_redis: PrivateRedis, admin: redis.Redis
) -> None:
    cache = AsyncRedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    await cache.set_many({"a": 1, "c": 3})
    admin.set("app:b", b"\xff not perfkit's")
    values = await asyncio.gather(cache.get("a"), cache.get("b", "miss"), cache.get("c"))
    assert values == [1, "miss", 3]
    await cache.close()


async def test_pipelining_with_l1_serves_the_process_own_writes(
    private_redis: PrivateRedis,
) -> None:
    cache = AsyncRedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS, l1=True)
    await cache.set_many({f"k{i}": 0 for i in range(16)})
    for version in range(1, 6):
        await cache.set_many({f"k{i}": version for i in range(16)})
        # Read twice: from Redis in one batch, then from L1; both see the write.
        for _ in range(2):
            values = await asyncio.gather(*(cache.get(f"k{i}") for i in range(16)))
            assert values == [version] * 16
    await cache.close()


def _calls(client: redis.Redis, command: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_concurrent_misses_claim_and_store_in_one_script_call_each(
    private_redis: PrivateRedis, admin: redis.Redis
) -> None:
    cache = AsyncRedisService(private_redis.url, namespace="app", settings=PATIENT_SETTINGS)
    loads: list[int] = []

    async def load(i: int) -> int:
        loads.append(i)
        await asyncio.sleep(0.05)
        return i

    await cache.get_or_set("warm", lambda: 0)  # scripts loaded: no NOSCRIPT retries below
    admin.config_resetstat()
    values = await asyncio.gather(
        *(cache.get_or_set(f"k{i}", lambda i=i: load(i)) for i in range(50))
    )
    assert values == list(range(50))
    assert sorted(loads) == list(range(50))
    # The claims of the misses that arrive together in one script call, and likewise the
    # stores that release their locks (a lone first read is sent ahead of the others, so the
    # misses arrive in a few groups): not one call per key for each (100).
    assert _calls(admin, "evalsha") <= 10
    assert _calls(admin, "set") == 50
    assert admin.zcard(cache._lock_set) == 0  # every lock given back
    assert await cache.get_many([f"k{i}" for i in range(50)]) == {f"k{i}": i for i in range(50)}
    await cache.close()


async def test_a_lock_claimed_for_a_cancelled_caller_is_given_back(
    private_redis: PrivateRedis, admin: redis.Redis
) -> None:
    cache = AsyncRedisService(private_redis.url, namespace="app", settings=PATIENT_SETTINGS)
    lock_key = cache._lock_key(cache._key("k"))
    claim = asyncio.ensure_future(cache._claim_lock(lock_key, (), 0))
    await asyncio.sleep(0)  # queued in the batch, not sent yet
    claim.cancel()
    for _ in range(100):
        await asyncio.sleep(0.01)
        if admin.zscore(cache._lock_set, lock_key) is None and _calls(admin, "zrem"):
            break
    assert admin.zscore(cache._lock_set, lock_key) is None
    token, _ = await cache._claim_lock(lock_key, (), 0)
    assert token is not None  # free for the next miss
    await cache.close()


async def test_locks_taken_and_released_do_not_reach_l1_as_invalidations(
    private_redis: PrivateRedis,
) -> None:
    cache = AsyncRedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS, l1=True)
    assert cache.wait_l1_ready()
    near = cache._near
    assert near is not None
    await cache.set("marker", 1)
    await asyncio.sleep(0.2)  # its push is in
    epoch = near.epoch
    lock_key = cache._lock_key(cache._key("k"))
    token, _ = await cache._claim_lock(lock_key, (), 0)
    assert token is not None
    await cache._unlock(lock_key, token)
    # A write of an entry counts twice: its own eviction, and its push, which Redis sends
    # after the lock set's (one tracking connection, in order).
    await cache.set("marker", 2)
    for _ in range(500):
        await asyncio.sleep(0.01)
        if near.epoch >= epoch + 2:
            break
    await asyncio.sleep(0.1)
    assert near.epoch == epoch + 2  # the lock set's two pushes were skipped
    await cache.close()


async def test_the_lock_set_expires_with_its_latest_lock(
    private_redis: PrivateRedis, admin: redis.Redis
) -> None:
    # A process that dies holding a lock leaves nothing behind for good.
    cache = AsyncRedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    token, _ = await cache._claim_lock(cache._lock_key(cache._key("k")), (), 0)
    assert token is not None
    assert 0 < admin.pttl(cache._lock_set) <= cache._lock_ms
    await cache.close()
