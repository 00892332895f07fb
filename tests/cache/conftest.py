from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from perfkit import Settings
from perfkit.cache import AsyncRedisService, RedisService

# Short timeouts and lock waits so fault tests finish quickly.
TEST_SETTINGS = Settings(
    redis_socket_timeout=0.3,
    redis_connect_timeout=0.3,
    redis_retry_max_delay=0.5,
    cache_lock_wait=3.0,
)


@pytest.fixture
def cache(redis_url: str, namespace: str) -> Iterator[RedisService]:
    service = RedisService(redis_url, namespace=namespace, settings=TEST_SETTINGS)
    yield service
    service.close()


@pytest.fixture
async def acache(redis_url: str, namespace: str) -> AsyncIterator[AsyncRedisService]:
    service = AsyncRedisService(redis_url, namespace=namespace, settings=TEST_SETTINGS)
    yield service
    await service.close()
