# Generated from test_hit_path_async.py by tools/async_to_sync.py: do not edit.
"""The services' own MGET (``_send_mget``): sent on a pooled connection without
``execute_command``, and every failure handled as redis-py and the service handled it before.

Written once, for both services: ``test_hit_path.py`` is generated from
``test_hit_path_async.py`` (tools/async_to_sync.py)."""

from __future__ import annotations

import pytest
import redis

from perfkit.cache import RedisService
from tests._servers import PrivateRedis
from tests.cache.conftest import TEST_SETTINGS

# Each test twice: reads sent on the pool directly, and through execute_command.
pytestmark = pytest.mark.usefixtures("read_lane")


def _mget_stats(admin: redis.Redis) -> dict[str, int]:
    stats: dict[str, int] = admin.info("commandstats").get("cmdstat_mget", {})
    return stats


def _clients_of(admin: redis.Redis, user: str) -> int:
    return sum(1 for client in admin.client_list() if client.get("user") == user)


def test_a_read_that_times_out_once_is_sent_again_not_a_fallback(
    private_redis: PrivateRedis,
) -> None:
    admin = redis.Redis.from_url(private_redis.url)
    cache = RedisService(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    cache.set("k", "v")
    # The server holds commands longer than the socket timeout (0.3 s), once: the read on
    # the pooled connection times out, and redis-py's retry gets the value, as before.
    admin.client_pause(450, all=True)
    assert cache.get("k") == "v"
    assert cache.fallback_active is False
    assert cache.stats().errors == 0
    cache.close()
    admin.close()


def test_a_refused_read_is_sent_once_and_keeps_its_connection(private_redis: PrivateRedis) -> None:
    admin = redis.Redis.from_url(private_redis.url)
    admin.set("app:secret", b"\x00")
    # A user that may read only the app:ok* keys: an MGET of app:secret is refused.
    admin.acl_setuser("reader", enabled=True, passwords=["+pw"], commands=["+@all"])
    admin.execute_command("ACL", "SETUSER", "reader", "resetkeys", "~app:ok*")
    url = private_redis.url.replace("redis://", "redis://reader:pw@")
    cache = RedisService(url, namespace="app", settings=TEST_SETTINGS)
    admin.config_resetstat()
    for _ in range(3):
        assert cache.get("secret", "refused") == "refused"
    # Each refusal counted once, and not sent again through execute_command; the
    # connection that carried it (whole reply read) went back to the pool.
    assert _mget_stats(admin).get("rejected_calls") == 3
    assert _clients_of(admin, "reader") == 1
    assert cache.fallback_active is False
    assert cache.stats().errors == 3
    cache.close()
    admin.close()


def test_a_single_connection_client_reads_through_execute_command(
    redis_url: str, namespace: str
) -> None:
    client = redis.Redis.from_url(redis_url, single_connection_client=True)
    cache = RedisService(client, namespace=namespace, settings=TEST_SETTINGS)
    assert cache._pool is None
    cache.set("k", [1, 2])
    assert cache.get("k") == [1, 2]
    assert cache.get_or_set("t", lambda: "loaded", tags=["x"]) == "loaded"
    assert cache.get_or_set("t", lambda: "again", tags=["x"]) == "loaded"
    cache.clear()
    cache.close()
    client.close()
