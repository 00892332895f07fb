# Generated from test_l1_async.py by tools/async_to_sync.py: do not edit.
"""The L1 near cache: hits without a round trip, invalidation from other services and
processes through Redis's tracking pushes, bypassed while the push channel is down.

Written once, for both services: ``test_l1.py`` is generated from ``test_l1_async.py``
(tools/async_to_sync.py). NearCache on its own is in ``test_near_cache.py``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import msgspec
import pytest
import redis

import perfkit._compat.redis
from perfkit.cache import RedisService, cached_query
from tests._servers import PrivateRedis
from tests.cache.conftest import TEST_SETTINGS, eventually, reads, settle


class Product(msgspec.Struct, frozen=True):
    id: int
    price: float


def commands(client: redis.Redis, name: str) -> int:
    stats = client.info("commandstats").get(f"cmdstat_{name}", {})
    return int(stats.get("calls", 0))


@pytest.fixture
def server() -> Iterator[PrivateRedis]:
    # A private server: the command counts below must be ours alone.
    private = PrivateRedis()
    yield private
    private.close()


def l1_service(url: str) -> RedisService:
    service = RedisService(url, namespace="app", settings=TEST_SETTINGS, l1=True)
    assert service.wait_l1_ready()
    return service


def test_hits_are_served_from_memory_without_a_round_trip(server: PrivateRedis) -> None:
    cache = l1_service(server.url)
    client = redis.Redis.from_url(server.url)
    cache.set("k", {"v": 1}, tags=["t"])
    settle(cache, server.url)
    assert cache.get("k") == {"v": 1}  # from Redis, now kept in L1
    before = commands(client, "get") + commands(client, "mget")
    for _ in range(100):
        assert cache.get("k") == {"v": 1}
    assert commands(client, "get") + commands(client, "mget") == before
    metrics = cache.stats()
    assert metrics.l1_hits == 100 and metrics.l1_entries == 1 and metrics.l1_active
    cache.close()
    client.close()


def test_writes_in_this_process_are_seen_at_once(server: PrivateRedis) -> None:
    cache = l1_service(server.url)
    cache.set("k", 1, tags=["t"])
    assert cache.get("k") == 1
    cache.set("k", 2, tags=["t"])
    assert cache.get("k") == 2
    cache.invalidate_tags(["t"])
    assert cache.get("k") is None
    cache.set("p:1", 1)
    assert cache.get("p:1") == 1
    cache.invalidate_pattern("p:*")
    assert cache.get("p:1") is None
    cache.set("d", 1)
    assert cache.get("d") == 1
    cache.delete("d")
    assert cache.get("d") is None
    cache.close()


def test_other_services_invalidations_reach_this_l1(server: PrivateRedis) -> None:
    cache = l1_service(server.url)
    other = RedisService(server.url, namespace="app", settings=TEST_SETTINGS)
    cache.set("k", "old", tags=["product:1"])
    cache.set("u", "old")
    cache.set("p:1", "old")
    settle(cache, server.url)
    assert [cache.get(k) for k in ("k", "u", "p:1")] == ["old"] * 3
    assert cache.stats().l1_entries == 3
    other.set("u", "new")
    delay = eventually(reads(cache, "u", "new"))
    other.invalidate_tags(["product:1"])
    eventually(reads(cache, "k", "miss"))
    other.invalidate_pattern("p:*")
    eventually(reads(cache, "p:1", "miss"))
    # Any writer, not only perfkit: tracking covers the whole namespace.
    raw = redis.Redis.from_url(server.url)
    assert cache.get("u") == "new"
    raw.delete("app:u")
    eventually(reads(cache, "u", "miss"))
    assert delay < 1.0
    raw.close()
    other.close()
    cache.close()


def test_cached_query_uses_l1_unless_told_not_to(server: PrivateRedis) -> None:
    cache = l1_service(server.url)
    client = redis.Redis.from_url(server.url)

    @cached_query(tags=["product:{id}"], cache=cache)
    def product(id: int) -> Product:
        return Product(id=id, price=9.5)

    @cached_query(cache=cache, l1=False)
    def uncached_in_l1(id: int) -> int:
        return id

    assert product(1) == Product(id=1, price=9.5)
    settle(cache, server.url)
    assert product(1) == Product(id=1, price=9.5)  # from Redis, kept in L1 as a Product
    before = commands(client, "mget")
    assert product(1) is product(1)
    assert commands(client, "mget") == before
    uncached_in_l1(2)
    settle(cache, server.url)
    uncached_in_l1(2)
    mgets = commands(client, "mget")
    uncached_in_l1(2)
    assert commands(client, "mget") == mgets + 1
    cache.close()
    client.close()


def test_lost_push_channel_clears_and_bypasses_l1(server: PrivateRedis) -> None:
    cache = l1_service(server.url)

    def l1_off() -> bool:
        return not cache.stats().l1_active

    def recovered() -> bool:
        return not cache.stats().fallback_active

    cache.set("k", "before")
    assert cache.get("k") == "before"
    server.kill()
    # Once the listener sees its connection close, L1 is emptied and bypassed.
    eventually(l1_off)
    assert cache.stats().l1_entries == 0
    assert cache.get("k", "miss") == "miss"
    server.start()
    assert cache.wait_l1_ready(10)
    eventually(recovered, timeout=10)
    cache.set("k", "after")
    settle(cache, server.url)
    assert cache.get("k") == "after"
    assert cache.get("k") == "after"
    assert cache.stats().l1_entries == 1
    cache.close()


def test_without_a_push_hook_l1_stays_off_and_reads_go_to_redis(
    server: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A redis-py whose connections take no invalidation handler (perfkit._compat.redis).
    monkeypatch.setattr(perfkit._compat.redis, "PUSH_HANDLER", False)
    cache = RedisService(server.url, namespace="app", settings=TEST_SETTINGS, l1=True)
    other = RedisService(server.url, namespace="app", settings=TEST_SETTINGS)
    cache.set("k", "old")
    assert cache.get("k") == "old"
    other.set("k", "new")
    assert cache.get("k") == "new"  # at once: no near copy to go stale
    assert cache.wait_l1_ready(0.5) is False
    metrics = cache.stats()
    assert metrics.l1_active is False and metrics.l1_hits == 0
    other.close()
    cache.close()


def test_other_process_write_reaches_l1(server: PrivateRedis) -> None:
    cache = l1_service(server.url)
    cache.set("k", "old")
    settle(cache, server.url)
    assert cache.get("k") == "old"
    assert cache.stats().l1_entries == 1
    code = "\n".join(
        [
            "import sys",
            "from perfkit import Settings",
            "from perfkit.cache import RedisService",
            "RedisService(sys.argv[1], namespace='app', settings=Settings()).set('k', 'new')",
        ]
    )
    subprocess.run([sys.executable, "-c", code, server.url], check=True)
    eventually(reads(cache, "k", "new"))
    cache.close()
