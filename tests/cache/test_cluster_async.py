"""The cache on a Redis Cluster (3 primaries on loopback, started by the test): the same
behaviour as on a single server, with keys, tags and locks spread over the slots.

Written once, for both services: ``test_cluster.py`` is generated from
``test_cluster_async.py`` (tools/async_to_sync.py). Loaders racing on the cluster, in each
twin's own concurrency, are in ``test_cluster_races.py``."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio

from perfkit.cache import AsyncRedisService
from tests._servers import PrivateCluster
from tests.cache.conftest import TEST_SETTINGS


@pytest.fixture
async def acache(cluster: PrivateCluster) -> AsyncIterator[AsyncRedisService]:
    service = AsyncRedisService(
        cluster.url, namespace=f"c{uuid.uuid4().hex[:8]}", settings=TEST_SETTINGS
    )
    yield service
    await service.clear()
    await service.close()


def raw(cluster: PrivateCluster) -> redis.RedisCluster:
    return redis.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)


async def test_values_batches_and_tags_across_slots(
    acache: AsyncRedisService, cluster: PrivateCluster
) -> None:
    items = {f"k{i}": {"i": i} for i in range(200)}
    await acache.set_many(items, tags=["bulk"])
    await acache.set("none", None)
    assert await acache.get_many(list(items)) == items
    assert await acache.get("none", "default") is None
    # The keys really are spread over the primaries.
    client = raw(cluster)
    nodes = {client.get_node_from_key(f"{acache.namespace}:k{i}").name for i in range(200)}
    assert len(nodes) == 3
    client.close()
    await acache.invalidate_tags(["bulk"])
    assert await acache.get_many(list(items)) == {}
    assert await acache.delete("none") == 1


async def test_pattern_invalidation_scans_every_primary(acache: AsyncRedisService) -> None:
    await acache.set_many({f"product:{i}": i for i in range(300)})
    await acache.set("user:1", 1)
    assert await acache.invalidate_pattern("product:*") == 300
    assert await acache.get_many(["product:1", "user:1"]) == {"user:1": 1}
    metrics = await acache.stats()
    assert metrics.keys == 1 and metrics.used_memory and metrics.connected_clients


async def test_existing_cluster_client(cluster: PrivateCluster) -> None:
    client = redis.asyncio.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    cache = AsyncRedisService(client, namespace="given", settings=TEST_SETTINGS)
    await cache.set("k", 1)
    assert await cache.get("k") == 1
    await cache.clear()
    await cache.close()
    await client.aclose()


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_node_restart_without_failover(cluster: PrivateCluster) -> None:
    cache = AsyncRedisService(cluster.url, namespace="restart", settings=TEST_SETTINGS)
    await cache.set_many({f"k{i}": i for i in range(30)})
    node = cluster.nodes[1]
    node.kill()
    # Keys on the dead node's slots: no exception reaches the caller.
    for i in range(30):
        await cache.get(f"k{i}")
    assert await cache.get_or_set("during", lambda: "computed") == "computed"
    node.start()
    await asyncio.to_thread(cluster.wait_ok, timeout=30)
    deadline = time.monotonic() + 30
    while (await cache.stats()).fallback_active:
        assert time.monotonic() < deadline, "the service did not return to the cluster"
        await asyncio.sleep(0.2)
    await cache.set("after", 1)
    assert await cache.get("after") == 1
    await cache.clear()
    await cache.close()
