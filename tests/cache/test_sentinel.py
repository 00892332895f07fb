"""Behind Redis Sentinel: a sentinel URL finds the master, and a failover is survived."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from perfkit import ConfigError
from perfkit.cache import RedisService
from perfkit.cache._base import SentinelURL
from tests._servers import PrivateRedis, PrivateSentinel
from tests.cache.conftest import TEST_SETTINGS


@pytest.fixture
def replicated() -> Iterator[tuple[PrivateRedis, PrivateRedis, PrivateSentinel]]:
    master = PrivateRedis()
    replica = PrivateRedis(["--replicaof", "127.0.0.1", str(master.port)])
    sentinel = PrivateSentinel(master)
    sentinel.wait_for_replicas(1)
    yield master, replica, sentinel
    sentinel.close()
    replica.close()
    master.close()


def role(server: PrivateRedis) -> str:
    """The server's role; "unknown" when a promotion closed this probe's connection
    (Sentinel kills the normal clients of a server it reconfigures)."""
    client = redis.Redis.from_url(server.url)
    try:
        return str(client.info("replication")["role"])
    except redis.ConnectionError:
        return "unknown"
    finally:
        client.close()


def test_sentinel_urls_are_parsed_and_checked() -> None:
    parsed = SentinelURL.parse("redis+sentinel://:secret@10.0.0.1:26379,10.0.0.2/shop/3")
    assert parsed == SentinelURL(
        [("10.0.0.1", 26379), ("10.0.0.2", 26379)], "shop", 3, None, "secret"
    )
    assert SentinelURL.parse("redis://127.0.0.1:6379/0") is None
    for bad in ("redis+sentinel://h:1", "redis+sentinel://h:x/shop", "redis+sentinel://h/s/x"):
        with pytest.raises(ConfigError, match="sentinel URL"):
            SentinelURL.parse(bad)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_service_follows_the_master_through_a_failover(
    replicated: tuple[PrivateRedis, PrivateRedis, PrivateSentinel],
) -> None:
    master, replica, sentinel = replicated
    cache = RedisService(sentinel.url, namespace="app", settings=TEST_SETTINGS, l1=True)
    assert cache.wait_l1_ready()
    cache.set("k", "v1", tags=["t"])
    assert cache.get("k") == "v1"
    raw_master = redis.Redis.from_url(master.url)
    assert raw_master.get("app:k") is not None  # it really went to the master
    raw_master.close()

    master.kill()
    deadline = time.monotonic() + 30
    # No exception reaches the caller while the sentinel promotes the replica.
    while role(replica) != "master" or cache.stats().fallback_active:
        assert cache.get_or_set("during", lambda: "computed") == "computed"
        assert time.monotonic() < deadline, "no failover"
        time.sleep(0.1)
    cache.set("k", "v2", tags=["t"])
    assert cache.get("k") == "v2"
    raw_replica = redis.Redis.from_url(replica.url)
    assert raw_replica.get("app:k") is not None  # now on the promoted replica
    raw_replica.close()
    assert cache.wait_l1_ready(10)
    cache.invalidate_tags(["t"])
    assert cache.get("k") is None
    cache.close()
