"""The cache on a Redis Cluster (3 primaries on loopback, started by the test): the same
behaviour as on a single server, with keys, tags and locks spread over the slots."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from perfkit.cache import AsyncRedisService, RedisService, cached_query
from tests._servers import PrivateCluster
from tests.cache.conftest import TEST_SETTINGS


@pytest.fixture
def cache(cluster: PrivateCluster) -> Iterator[RedisService]:
    service = RedisService(
        cluster.url, namespace=f"c{uuid.uuid4().hex[:8]}", settings=TEST_SETTINGS
    )
    yield service
    service.clear()
    service.close()


def raw(cluster: PrivateCluster) -> redis.RedisCluster:
    return redis.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)


def test_values_batches_and_tags_across_slots(cache: RedisService, cluster: PrivateCluster) -> None:
    items = {f"k{i}": {"i": i} for i in range(200)}
    cache.set_many(items, tags=["bulk"])
    cache.set("none", None)
    assert cache.get_many(list(items)) == items
    assert cache.get("none", "default") is None
    # The keys really are spread over the primaries.
    client = raw(cluster)
    nodes = {client.get_node_from_key(f"{cache.namespace}:k{i}").name for i in range(200)}
    assert len(nodes) == 3
    client.close()
    cache.invalidate_tags(["bulk"])
    assert cache.get_many(list(items)) == {}
    assert cache.delete("none") == 1


def test_pattern_invalidation_scans_every_primary(cache: RedisService) -> None:
    cache.set_many({f"product:{i}": i for i in range(300)})
    cache.set("user:1", 1)
    assert cache.invalidate_pattern("product:*") == 300
    assert cache.get_many(["product:1", "user:1"]) == {"user:1": 1}
    metrics = cache.stats()
    assert metrics.keys == 1 and metrics.used_memory and metrics.connected_clients


def test_slow_loader_racing_invalidation(cache: RedisService) -> None:
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "old"

    worker = threading.Thread(target=lambda: cache.get_or_set("p", slow, tags=["products", "c:1"]))
    worker.start()
    assert started.wait(5)
    cache.invalidate_tags(["c:1"])
    release.set()
    worker.join(5)
    assert cache.get("p", "miss") == "miss"
    assert cache.get_or_set("p", lambda: "new", tags=["products", "c:1"]) == "new"
    assert cache.get("p") == "new"


def test_stampede_and_decorator(cache: RedisService) -> None:
    calls: list[int] = []
    barrier = threading.Barrier(30)

    @cached_query(ttl=60, tags=["report:{day}"], cache=cache)
    def report(day: str) -> dict[str, int]:
        calls.append(1)
        time.sleep(0.2)
        return {"orders": 1}

    def call() -> None:
        barrier.wait()
        report("mon")

    threads = [threading.Thread(target=call) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    cache.invalidate_tags(["report:mon"])
    assert report("mon") == {"orders": 1} and len(calls) == 2


async def test_async_service_on_the_cluster(cluster: PrivateCluster) -> None:
    cache = AsyncRedisService(cluster.url, namespace="casync", settings=TEST_SETTINGS)
    await cache.set_many({f"a{i}": i for i in range(50)}, tags=["t"])
    assert await cache.get_many([f"a{i}" for i in range(50)]) == {f"a{i}": i for i in range(50)}
    calls: list[int] = []

    async def loader() -> int:
        calls.append(1)
        await asyncio.sleep(0.1)
        return 7

    assert (
        await asyncio.gather(*(cache.get_or_set("g", loader, tags=["t"]) for _ in range(20)))
        == [7] * 20
    )
    assert len(calls) == 1
    await cache.invalidate_tags(["t"])
    assert await cache.get("a1") is None and await cache.get("g") is None
    await cache.clear()
    await cache.close()


def test_existing_cluster_client(cluster: PrivateCluster) -> None:
    client = raw(cluster)
    cache = RedisService(client, namespace="given", settings=TEST_SETTINGS)
    cache.set("k", 1)
    assert cache.get("k") == 1
    cache.clear()
    cache.close()
    client.close()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_node_restart_without_failover(cluster: PrivateCluster) -> None:
    cache = RedisService(cluster.url, namespace="restart", settings=TEST_SETTINGS)
    cache.set_many({f"k{i}": i for i in range(30)})
    node = cluster.nodes[1]
    node.kill()
    # Keys on the dead node's slots: no exception reaches the caller.
    for i in range(30):
        cache.get(f"k{i}")
    assert cache.get_or_set("during", lambda: "computed") == "computed"
    node.start()
    cluster.wait_ok(timeout=30)
    deadline = time.monotonic() + 30
    while cache.stats().fallback_active:
        assert time.monotonic() < deadline, "the service did not return to the cluster"
        time.sleep(0.2)
    cache.set("after", 1)
    assert cache.get("after") == 1
    cache.clear()
    cache.close()
