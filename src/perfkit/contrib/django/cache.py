"""``PerfkitCache``: a Django ``CACHES`` backend on perfkit's cache services.

It implements Django's cache API as Django documents it (versions, key prefixes and key
functions, ``None``/0/negative timeouts, ``add``/``incr``/``touch``), its ``a*`` methods
natively on perfkit's :class:`~perfkit.cache.AsyncRedisService` (one per event loop), and
adds what perfkit's services have: tags (``set(..., tags=[...])``, ``invalidate_tags``), a
stampede-protected ``get_or_load``, and the memory fallback while Redis is away. Values are
signed pickles by default (``_values.py``). See docs/django.md.
"""

# Django's a* methods take a cache timeout (how long to keep a value), not an I/O deadline.
# ruff: noqa: ASYNC109

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

from perfkit._errors import ConfigError
from perfkit.cache import AsyncRedisService, RedisService
from perfkit.contrib.django._shared import Config, shared
from perfkit.contrib.django._values import SERIALIZERS, BackendStats
from perfkit.settings import check_redis_url

__all__ = ["BackendStats", "PerfkitCache"]

# OPTIONS keys Django's BaseCache reads itself (and ignores for Redis).
_DJANGO_OPTIONS = frozenset({"MAX_ENTRIES", "CULL_FREQUENCY"})
_OPTIONS = frozenset({"NAMESPACE", "L1", "SERIALIZER"}) | _DJANGO_OPTIONS


class PerfkitCache(BaseCache):  # type: ignore[misc]  # Django has no type information
    """Django cache backend: ``"BACKEND": "perfkit.contrib.django.cache.PerfkitCache"``.

    ``LOCATION``: a Redis URL (default ``REDIS_URL``). ``OPTIONS``: ``NAMESPACE`` (default
    ``CACHE_NAMESPACE``), ``L1`` (perfkit's near cache, default off), ``SERIALIZER``:
    ``"pickle"`` (default: any picklable value, signed with a key derived from
    ``SECRET_KEY``; an entry that does not verify is a miss, never unpickled) or
    ``"msgspec"`` (only values that come back unchanged through MessagePack; others raise
    ``TypeError``). ``TIMEOUT``, ``KEY_PREFIX``, ``VERSION`` and ``KEY_FUNCTION`` are
    Django's.
    """

    def __init__(self, server: str | list[str] | None, params: dict[str, Any]) -> None:
        super().__init__(params)
        options = dict(params.get("OPTIONS") or {})
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ConfigError(
                f"PerfkitCache OPTIONS has unknown keys {unknown}: it takes {sorted(_OPTIONS)}"
            )
        if isinstance(server, list | tuple):
            if len(server) != 1:
                raise ConfigError("PerfkitCache LOCATION is one Redis URL (got a list)")
            server = server[0]
        location = check_redis_url(server, "CACHES LOCATION") if server else None
        serializer = options.get("SERIALIZER", "pickle")
        if serializer not in SERIALIZERS:
            raise ConfigError(
                f"PerfkitCache OPTIONS['SERIALIZER']={serializer!r}: use one of {SERIALIZERS}"
            )
        self._shared = shared(
            Config(location, options.get("NAMESPACE"), bool(options.get("L1")), serializer)
        )
        self._ops = self._shared.ops

    @property
    def service(self) -> RedisService:
        """The perfkit cache service of the sync methods (shared by the backend's threads)."""
        return self._ops.service

    async def aservice(self) -> AsyncRedisService:
        """The perfkit cache service of the ``a*`` methods in the running event loop."""
        return (await self._shared.async_ops()).service

    def stats(self) -> BackendStats:
        """The backend's own counters (bad signatures); the service's: ``service.stats()``."""
        return self._shared.values.stats()

    def reset_stats(self) -> None:
        """Zero :meth:`stats`."""
        self._shared.values.reset_stats()

    def get_backend_timeout(self, timeout: Any = DEFAULT_TIMEOUT) -> float | None:
        """Seconds to keep a value: ``None`` forever, 0 (or less) not at all."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return None if timeout is None else max(0.0, float(timeout))

    def _name(self, key: str, version: int | None) -> str:
        return self.make_and_validate_key(key, version=version)  # type: ignore[no-any-return]

    def _names(self, keys: Iterable[str], version: int | None) -> dict[str, str]:
        return {self._name(key, version): key for key in keys}

    def _named(self, data: Mapping[str, Any], version: int | None) -> dict[str, Any]:
        return {self._name(key, version): value for key, value in data.items()}

    # -- Django's API: each method, then its a* twin on the running loop's service --------

    def add(
        self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Set ``key`` only if it is not set; True if it was set."""
        return self._ops.add(self._name(key, version), value, self.get_backend_timeout(timeout))

    async def aadd(
        self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        ops = await self._shared.async_ops()
        return await ops.add(self._name(key, version), value, self.get_backend_timeout(timeout))

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        """The value at ``key``, or ``default``."""
        return self._ops.get(self._name(key, version), default)

    async def aget(self, key: str, default: Any = None, version: int | None = None) -> Any:
        return await (await self._shared.async_ops()).get(self._name(key, version), default)

    def set(
        self,
        key: str,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> None:
        """Cache ``value``; ``tags``: perfkit tags guarding it (see :meth:`invalidate_tags`)."""
        seconds = self.get_backend_timeout(timeout)
        self._ops.set(self._name(key, version), value, seconds, tags)

    async def aset(
        self,
        key: str,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> None:
        seconds = self.get_backend_timeout(timeout)
        await (await self._shared.async_ops()).set(self._name(key, version), value, seconds, tags)

    def touch(self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        """Give ``key`` a new timeout; False if it is not cached."""
        return self._ops.touch(self._name(key, version), self.get_backend_timeout(timeout))

    async def atouch(
        self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        ops = await self._shared.async_ops()
        return await ops.touch(self._name(key, version), self.get_backend_timeout(timeout))

    def delete(self, key: str, version: int | None = None) -> bool:
        """Remove ``key``; True if it was there."""
        return self._ops.delete(self._name(key, version))

    async def adelete(self, key: str, version: int | None = None) -> bool:
        return await (await self._shared.async_ops()).delete(self._name(key, version))

    def get_many(self, keys: Iterable[str], version: int | None = None) -> dict[str, Any]:
        """The cached values of ``keys`` (missing ones left out), in one round trip."""
        return self._ops.get_many(self._names(keys, version))

    async def aget_many(self, keys: Iterable[str], version: int | None = None) -> dict[str, Any]:
        return await (await self._shared.async_ops()).get_many(self._names(keys, version))

    def has_key(self, key: str, version: int | None = None) -> bool:
        """Whether ``key`` is cached (a cached None counts)."""
        return self._ops.has_key(self._name(key, version))

    async def ahas_key(self, key: str, version: int | None = None) -> bool:
        return await (await self._shared.async_ops()).has_key(self._name(key, version))

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        """Add ``delta`` to an integer value and return it (atomic on Redis, TTL kept);
        ``ValueError`` if ``key`` is not cached."""
        return self._ops.incr(self._name(key, version), delta, key)

    async def aincr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        return await (await self._shared.async_ops()).incr(self._name(key, version), delta, key)

    def set_many(
        self,
        data: Mapping[str, Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> list[str]:
        """Cache every item in one round trip; returns the keys that failed (none)."""
        if data:
            self._ops.set_many(self._named(data, version), self.get_backend_timeout(timeout), tags)
        return []

    async def aset_many(
        self,
        data: Mapping[str, Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> list[str]:
        if data:
            named = self._named(data, version)
            ops = await self._shared.async_ops()
            await ops.set_many(named, self.get_backend_timeout(timeout), tags)
        return []

    def delete_many(self, keys: Iterable[str], version: int | None = None) -> None:
        """Remove ``keys``."""
        self._ops.delete_many(list(self._names(keys, version)))

    async def adelete_many(self, keys: Iterable[str], version: int | None = None) -> None:
        await (await self._shared.async_ops()).delete_many(list(self._names(keys, version)))

    def clear(self) -> None:
        """Delete everything in this backend's perfkit namespace (only that: other data in
        the same Redis database is left alone, unlike Django's Redis backend's FLUSHDB)."""
        self._ops.clear()

    async def aclear(self) -> None:
        await (await self._shared.async_ops()).clear()

    def close(self, **kwargs: Any) -> None:
        """Nothing: the services are shared by the backend's threads and live with the
        process (the async ones with their event loop). Django calls this at the end of
        every request."""

    async def aclose(self, **kwargs: Any) -> None:
        """Nothing, as :meth:`close`."""

    # -- perfkit's additions --------------------------------------------------------------

    def get_or_load(
        self,
        key: str,
        loader: Callable[[], Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> Any:
        """The value at ``key``; on a miss ``loader()``'s, cached, with perfkit's stampede
        protection (concurrent misses in every process run ``loader`` once)."""
        seconds = self.get_backend_timeout(timeout)
        return self._ops.get_or_load(self._name(key, version), loader, seconds, tags)

    async def aget_or_load(
        self,
        key: str,
        loader: Callable[[], Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> Any:
        """:meth:`get_or_load` in an event loop (``loader`` may be a coroutine function)."""
        seconds = self.get_backend_timeout(timeout)
        ops = await self._shared.async_ops()
        return await ops.get_or_load(self._name(key, version), loader, seconds, tags)

    def invalidate_tags(self, tags: Iterable[str]) -> None:
        """Make every value set with any of ``tags`` a miss, in every process."""
        self._ops.invalidate_tags(tags)

    async def ainvalidate_tags(self, tags: Iterable[str]) -> None:
        """:meth:`invalidate_tags` in an event loop."""
        await (await self._shared.async_ops()).invalidate_tags(tags)
