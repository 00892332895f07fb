"""Cache fixtures. ``cache`` and ``acache`` run each test twice: on the shared standalone
server and on a private 3-primary Redis Cluster started once per session. Tests that look
at the standalone server directly (raw client, URL) run on standalone only."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis

import perfkit._compat.redis
from perfkit import Settings
from perfkit.cache import AsyncRedisService, RedisService
from tests._servers import PrivateCluster

# Short timeouts and lock waits so fault tests finish quickly.
TEST_SETTINGS = Settings(
    redis_socket_timeout=0.3,
    redis_connect_timeout=0.3,
    redis_retry_max_delay=0.5,
    cache_lock_wait=3.0,
)
# For tests marked ``patient`` (stampede tests: one loader across many callers): a connect
# or command past 0.3 s on a loaded machine falls back to memory, which loads without the
# lock, and that is not what they test.
PATIENT_SETTINGS = Settings(
    redis_socket_timeout=5.0, redis_connect_timeout=5.0, cache_lock_wait=10.0
)


def _settings(request: pytest.FixtureRequest) -> Settings:
    return PATIENT_SETTINGS if request.node.get_closest_marker("patient") else TEST_SETTINGS


def eventually(
    condition: Callable[[], object], timeout: float = 2.0, pause: float = 0.001
) -> float:
    """Seconds until ``condition()`` holds, polling every ``pause``; fails after ``timeout``."""
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(pause)
    return time.perf_counter() - start


async def aeventually(
    condition: Callable[[], Awaitable[object]],
    timeout: float = 2.0,  # noqa: ASYNC109 (eventually's twin: the same arguments)
    pause: float = 0.001,
) -> float:
    """``eventually`` for a condition that is awaited (tools/async_to_sync.py renames it)."""
    start = time.perf_counter()
    while not await condition():
        if time.perf_counter() - start > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(pause)
    return time.perf_counter() - start


def settle(cache: RedisService | AsyncRedisService, url: str) -> None:
    """Wait until the tracking pushes of ``cache``'s own last writes were handled: a value
    read while an invalidation is in flight is (rightly) not kept in L1. A marker entry put
    in L1 and then written in Redis leaves L1 when its push is handled, which is after every
    push the server sent before it (one connection, in order)."""
    near, marker = cache._near, f"{cache.namespace}:__settle__"
    assert near is not None

    def marked() -> bool:
        near.put(marker, None, 0, [], 1, near.epoch)  # refused while a push bumps the epoch
        return marker in near._entries  # (get would count a hit)

    eventually(marked, timeout=30)
    with redis.Redis.from_url(url) as client:
        client.set(marker, 1)  # no TTL: its expiry would be one more push, at any time
    eventually(lambda: marker not in near._entries, timeout=30)


def reads(cache: RedisService, key: str, value: object) -> Callable[[], bool]:
    """A condition for ``eventually``: ``cache`` reads ``value`` at ``key`` (``"miss"``:
    nothing)."""
    return lambda: cache.get(key, "miss") == value


def areads(cache: AsyncRedisService, key: str, value: object) -> Callable[[], Awaitable[bool]]:
    """``reads`` for ``aeventually`` (tools/async_to_sync.py renames it)."""

    async def condition() -> bool:
        return await cache.get(key, "miss") == value

    return condition


# A test asking for one of these inspects the standalone server itself.
_STANDALONE_ONLY = {"redis_client", "redis_url", "private_redis"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        on_cluster = params.get("server_kind") == "cluster"
        function = getattr(item, "function", None)
        own = set(inspect.signature(function).parameters) if function else set()
        standalone_only = own & _STANDALONE_ONLY or item.get_closest_marker("standalone_only")
        # A cluster reads through execute_command whichever lane: run it once.
        repeat = on_cluster and params.get("read_lane") == "execute_command"
        (dropped if (on_cluster and standalone_only) or repeat else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    cluster = PrivateCluster(3)
    yield cluster.url
    cluster.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    """A private 3-primary cluster of one test module's own: its tests may kill nodes or
    connections and move slots."""
    private = PrivateCluster(3)
    yield private
    private.close()


@pytest.fixture(params=["direct", "execute_command"])
def read_lane(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Services made during the test send their reads on the pool themselves, or through
    ``execute_command``, the public way (perfkit._compat.redis).
    Test modules of the hit path use it for every test (``pytestmark``)."""
    monkeypatch.setattr(perfkit._compat.redis, "DIRECT_READS", request.param == "direct")
    return str(request.param)


@pytest.fixture(params=["standalone", "cluster"])
def server_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cache_url(server_kind: str, request: pytest.FixtureRequest) -> str:
    fixture = "cluster_url" if server_kind == "cluster" else "redis_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def cache(cache_url: str, namespace: str, request: pytest.FixtureRequest) -> Iterator[RedisService]:
    service = RedisService(cache_url, namespace=namespace, settings=_settings(request))
    yield service
    service.clear()
    service.close()


@pytest.fixture
async def acache(
    cache_url: str, namespace: str, request: pytest.FixtureRequest
) -> AsyncIterator[AsyncRedisService]:
    service = AsyncRedisService(cache_url, namespace=namespace, settings=_settings(request))
    yield service
    await service.clear()
    await service.close()
