"""The cache's and metrics' old names (replaced by the one stats protocol, #14) answer and warn.

Each old name is called next to its new one on real parts: it raises a DeprecationWarning
naming the replacement and answers what the new name answers. The other aliases were removed
before the first release (CHANGELOG.md); delete this module with the last of them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import perfkit.cache
import perfkit.metrics
from perfkit.cache import AsyncRedisService, CacheStats, RedisService
from perfkit.queries import TimedPool
from perfkit.settings import Settings


@pytest.fixture
def cache(redis_url: str, namespace: str) -> Iterator[RedisService]:
    service = RedisService(redis_url, namespace=namespace, settings=Settings(redis_url=redis_url))
    yield service
    service.close()


@pytest.fixture
def pool(database_url: str) -> Iterator[TimedPool]:
    with TimedPool(database_url, min_size=1, max_size=1) as opened:
        yield opened


def test_cache_metrics_and_reset_metrics(cache: RedisService) -> None:
    cache.set("k", 1)
    cache.get("k")
    cache.get("missing")
    with pytest.warns(DeprecationWarning, match=r"RedisService\.metrics\(\) .* use stats\(\)"):
        old = cache.metrics()
    new = cache.stats()
    assert type(old) is type(new) is CacheStats
    assert (old.hits, old.misses, old.sets) == (new.hits, new.misses, new.sets) == (1, 1, 1)
    with pytest.warns(DeprecationWarning, match=r"reset_metrics\(\) .* use reset_stats\(\)"):
        cache.reset_metrics()
    assert cache.stats().hits == 0


async def test_async_cache_metrics_and_reset_metrics(redis_url: str, namespace: str) -> None:
    cache = AsyncRedisService(
        redis_url, namespace=namespace, settings=Settings(redis_url=redis_url)
    )
    try:
        await cache.get("missing")
        with pytest.warns(DeprecationWarning, match=r"AsyncRedisService\.metrics\(\)"):
            old = await cache.metrics()
        assert old.misses == (await cache.stats()).misses == 1
        with pytest.warns(DeprecationWarning, match=r"AsyncRedisService\.reset_metrics\(\)"):
            cache.reset_metrics()
        assert (await cache.stats()).misses == 0
    finally:
        await cache.close()


def test_cache_metrics_struct_name() -> None:
    with pytest.warns(DeprecationWarning, match=r"CacheMetrics .* use perfkit\.cache\.CacheStats"):
        assert perfkit.cache.CacheMetrics is CacheStats
