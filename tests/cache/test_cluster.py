# Generated from test_cluster_async.py by tools/async_to_sync.py: do not edit.
"""The cache on a Redis Cluster (3 primaries on loopback, started by the test): the same
behaviour as on a single server, with keys, tags and locks spread over the slots.

Written once, for both services: ``test_cluster.py`` is generated from
``test_cluster_async.py`` (tools/async_to_sync.py). Loaders racing on the cluster, in each
twin's own concurrency, are in ``test_cluster_races.py``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from perfkit.cache import RedisService
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


def test_existing_cluster_client(cluster: PrivateCluster) -> None:
    client = redis.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
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
