"""``PerfkitCache``: a Django ``CACHES`` backend on perfkit's :class:`~perfkit.cache.RedisService`.

It implements Django's cache API as Django documents it (versions, key prefixes and key
functions, ``None``/0/negative timeouts, ``add``/``incr``/``touch``, the ``a*`` methods of
``BaseCache``), and adds what perfkit's service has: tags (``set(..., tags=[...])``,
``invalidate_tags``), a stampede-protected ``get_or_load``, and the memory fallback while
Redis is away. See docs/django.md.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

from perfkit._errors import ConfigError
from perfkit.cache import RedisService, _codec
from perfkit.cache._base import CONNECTION_ERRORS
from perfkit.cache._codec import MISSING
from perfkit.settings import check_redis_url

__all__ = ["PerfkitCache"]

# OPTIONS keys Django's BaseCache reads itself (and ignores for Redis).
_DJANGO_OPTIONS = frozenset({"MAX_ENTRIES", "CULL_FREQUENCY"})
_OPTIONS = frozenset({"NAMESPACE", "L1", "SERIALIZER"}) | _DJANGO_OPTIONS
_SERIALIZERS = ("msgspec", "pickle")
# The shortest expiry perfkit can store (it counts in milliseconds; 0 means "never").
_MIN_TTL = 0.001

# An entry perfkit wrote untagged, holding a MessagePack integer: incremented in place,
# its TTL kept. (Lua's numbers are doubles: exact up to 2**53.)
_INCR = """
local raw = redis.call('GET', KEYS[1])
if not raw then return {0} end
if string.byte(raw, 1) ~= 0 then return {1} end
local ok, value = pcall(cmsgpack.unpack, string.sub(raw, 2))
if not ok or type(value) ~= 'number' or math.floor(value) ~= value then return {1} end
value = value + tonumber(ARGV[1])
redis.call('SET', KEYS[1], '\\0' .. cmsgpack.pack(value), 'KEEPTTL')
return {2, value}
"""

# One service per configuration and process: Django makes a backend per thread (and per
# async context), but a RedisService is thread-safe, and one is what keeps one memory
# fallback and one set of statistics.
_services: dict[tuple[str | None, str | None, bool], RedisService] = {}
_services_lock = threading.Lock()


def _service(location: str | None, namespace: str | None, l1: bool) -> RedisService:
    key = (location, namespace, l1)
    with _services_lock:
        service = _services.get(key)
        if service is None:
            service = RedisService(location, namespace=namespace, l1=l1)
            _services[key] = service
        return service


class PerfkitCache(BaseCache):  # type: ignore[misc]  # Django has no type information
    """Django cache backend: ``"BACKEND": "perfkit.contrib.django.cache.PerfkitCache"``.

    ``LOCATION``: a Redis URL (default ``REDIS_URL``). ``OPTIONS``: ``NAMESPACE`` (default
    ``CACHE_NAMESPACE``), ``L1`` (perfkit's near cache, default off), ``SERIALIZER``:
    ``"msgspec"`` (default: what perfkit caches, never pickle) or ``"pickle"`` (any object
    Django can cache, as Django's own backends do: only for a Redis nobody else writes to).
    ``TIMEOUT``, ``KEY_PREFIX``, ``VERSION`` and ``KEY_FUNCTION`` are Django's.
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
        self._serializer = options.get("SERIALIZER", "msgspec")
        if self._serializer not in _SERIALIZERS:
            raise ConfigError(
                f"PerfkitCache OPTIONS SERIALIZER={self._serializer!r}: use one of {_SERIALIZERS}"
            )
        self._service = _service(location, options.get("NAMESPACE"), bool(options.get("L1")))
        self._incr = self._service.client.register_script(_INCR)

    @property
    def service(self) -> RedisService:
        """The perfkit cache service behind this backend (shared by its threads)."""
        return self._service

    # -- values and timeouts ------------------------------------------------------------

    def _dump(self, value: Any) -> Any:
        # Integers stay MessagePack integers in both modes, so that incr() is atomic.
        if self._serializer == "pickle" and type(value) is not int:
            return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        return value

    def _load(self, stored: Any) -> Any:
        if self._serializer == "pickle" and isinstance(stored, bytes):
            return pickle.loads(stored)  # noqa: S301 (SERIALIZER="pickle" is the user's choice)
        return stored

    def get_backend_timeout(self, timeout: Any = DEFAULT_TIMEOUT) -> float | None:
        """Seconds to keep a value: ``None`` forever, 0 (or less) not at all."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return None if timeout is None else max(0.0, float(timeout))

    @staticmethod
    def _ttl(seconds: float | None) -> float:
        # perfkit's ttl: 0 is "no expiry"; Django's None is.
        return 0 if seconds is None else max(seconds, _MIN_TTL)

    def _full(self, key: str, version: int | None) -> str:
        return self._service._key(self.make_and_validate_key(key, version=version))

    def _atomic(self, full: str, command: Callable[[], Any], fallback: Callable[[], Any]) -> Any:
        """``command`` writing ``full`` on Redis, or ``fallback`` (through the service,
        which serves from memory) while Redis is away."""
        if not self._service.fallback_active:
            try:
                result = command()
            except CONNECTION_ERRORS as exc:
                self._service._fall_back(exc)
            else:
                # Written behind the service's back: its L1 copy (if any) is stale now,
                # before Redis's invalidation push arrives.
                self._service._near_evict([full])
                return result
        return fallback()

    # -- Django's API ---------------------------------------------------------------------

    def add(
        self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Set ``key`` only if it is not set; True if it was set."""
        seconds = self.get_backend_timeout(timeout)
        name = self.make_and_validate_key(key, version=version)
        full = self._service._key(name)
        # The untagged layout the service writes (see perfkit.cache._codec).
        payload = _codec.entry_prefix([]) + _codec.encode(self._dump(value), key=name)

        def command() -> bool:
            if seconds == 0:  # Django: "added" if absent, but not kept
                added = bool(self._service.client.set(full, payload, nx=True))
                if added:
                    self._service.client.delete(full)
                return added
            ms = None if seconds is None else max(round(seconds * 1000), 1)
            return bool(self._service.client.set(full, payload, nx=True, px=ms))

        def fallback() -> bool:
            if self._service.get(name, MISSING) is not MISSING:
                return False
            if seconds != 0:
                self._service.set(name, self._dump(value), self._ttl(seconds))
            return True

        return bool(self._atomic(full, command, fallback))

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        """The value at ``key``, or ``default``."""
        stored = self._service.get(self.make_and_validate_key(key, version=version), MISSING)
        return default if stored is MISSING else self._load(stored)

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
        name = self.make_and_validate_key(key, version=version)
        seconds = self.get_backend_timeout(timeout)
        if seconds == 0:
            self._service.delete(name)
            return
        self._service.set(name, self._dump(value), self._ttl(seconds), tags)

    def touch(self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        """Give ``key`` a new timeout; False if it is not cached."""
        name = self.make_and_validate_key(key, version=version)
        full = self._service._key(name)
        seconds = self.get_backend_timeout(timeout)
        if seconds == 0:
            return self.delete(key, version=version)

        def command() -> bool:
            client = self._service.client
            if seconds is None:
                pipe = client.pipeline(transaction=False)
                pipe.exists(full)
                pipe.persist(full)
                return bool(pipe.execute()[0])
            return bool(client.pexpire(full, max(round(seconds * 1000), 1)))

        def fallback() -> bool:
            stored = self._service.get(name, MISSING)
            if stored is MISSING:
                return False
            self._service.set(name, stored, self._ttl(seconds))
            return True

        return bool(self._atomic(full, command, fallback))

    def delete(self, key: str, version: int | None = None) -> bool:
        """Remove ``key``; True if it was there."""
        return self._service.delete(self.make_and_validate_key(key, version=version)) > 0

    def get_many(self, keys: Iterable[str], version: int | None = None) -> dict[str, Any]:
        """The cached values of ``keys`` (missing ones left out), in one round trip."""
        names = {self.make_and_validate_key(key, version=version): key for key in keys}
        found = self._service.get_many(list(names))
        return {names[name]: self._load(stored) for name, stored in found.items()}

    def has_key(self, key: str, version: int | None = None) -> bool:
        """Whether ``key`` is cached (a cached None counts)."""
        return self._service.exists(self.make_and_validate_key(key, version=version))

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        """Add ``delta`` to an integer value and return it (atomic on Redis, TTL kept);
        ``ValueError`` if ``key`` is not cached."""
        name = self.make_and_validate_key(key, version=version)
        full = self._service._key(name)

        def command() -> Any:
            return self._incr(keys=[full], args=[delta])

        def fallback() -> Any:
            return [1]

        answer = self._atomic(full, command, fallback)
        if answer[0] == 0:
            raise ValueError(f"Key '{key}' not found")
        if answer[0] == 2:
            return int(answer[1])
        # Not a plain integer entry (tagged, pickled, in memory): read, add, write back.
        stored = self._service.get(name, MISSING)
        if stored is MISSING:
            raise ValueError(f"Key '{key}' not found")
        value = self._load(stored) + delta
        self._service.set(name, self._dump(value))
        return value  # type: ignore[no-any-return]

    def set_many(
        self,
        data: Mapping[str, Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        *,
        tags: Iterable[str] = (),
    ) -> list[str]:
        """Cache every item in one round trip; returns the keys that failed (none)."""
        if not data:
            return []
        named = {
            self.make_and_validate_key(key, version=version): self._dump(value)
            for key, value in data.items()
        }
        seconds = self.get_backend_timeout(timeout)
        if seconds == 0:
            self._service.delete(*named)
        else:
            self._service.set_many(named, self._ttl(seconds), tags)
        return []

    def delete_many(self, keys: Iterable[str], version: int | None = None) -> None:
        """Remove ``keys``."""
        names = [self.make_and_validate_key(key, version=version) for key in keys]
        if names:
            self._service.delete(*names)

    def clear(self) -> None:
        """Delete everything in this backend's perfkit namespace (only that: other data in
        the same Redis database is left alone, unlike Django's Redis backend's FLUSHDB)."""
        self._service.clear()

    def close(self, **kwargs: Any) -> None:
        """Nothing: the service is shared by the backend's threads and lives with the
        process (Django calls this at the end of every request)."""

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
        name = self.make_and_validate_key(key, version=version)
        seconds = self.get_backend_timeout(timeout)
        if seconds == 0:
            return loader()
        stored = self._service.get_or_set(
            name, lambda: self._dump(loader()), self._ttl(seconds), tags
        )
        return self._load(stored)

    def invalidate_tags(self, tags: Iterable[str]) -> None:
        """Make every value set with any of ``tags`` a miss, in every process."""
        self._service.invalidate_tags(tags)
