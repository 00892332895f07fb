"""perfkit.cache: a Redis cache with TTLs, race-free tags, stampede protection and memory
fallback (:class:`RedisService`, :class:`AsyncRedisService`), the :func:`cached_query`
decorator, and cache warming. See docs/cache.md."""

import typing as _typing

from perfkit.cache._near import NearCache
from perfkit.cache._stats import CacheStats
from perfkit.cache._sync import RedisService
from perfkit.cache.decorator import (
    AsyncCachedFunction,
    CachedFunction,
    CachedQueryDecorator,
    Serializer,
    cached_query,
    get_default_cache,
    set_default_cache,
)
from perfkit.cache.warmer import (
    AsyncCacheWarmer,
    CacheWarmer,
    WarmResult,
    default_warmer,
    register_warmer,
)

if _typing.TYPE_CHECKING:
    from perfkit.cache._aio import AsyncRedisService

__all__ = [
    "AsyncCacheWarmer",
    "AsyncCachedFunction",
    "AsyncRedisService",
    "CacheStats",
    "CacheWarmer",
    "CachedFunction",
    "CachedQueryDecorator",
    "NearCache",
    "RedisService",
    "Serializer",
    "WarmResult",
    "cached_query",
    "default_warmer",
    "get_default_cache",
    "register_warmer",
    "set_default_cache",
]


def __getattr__(name: str) -> object:
    # The async service (redis.asyncio's client, the MGET batcher...) is imported on first
    # use: a sync-only application never loads it (tests/cache/test_import_cost.py).
    if name == "AsyncRedisService":
        from perfkit.cache._aio import AsyncRedisService

        return AsyncRedisService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
