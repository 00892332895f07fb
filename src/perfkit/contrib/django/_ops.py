# Generated from _ops_async.py by tools/async_to_sync.py: do not edit.
"""BackendOps: Django's cache operations on a RedisService, for PerfkitCache's sync methods."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from perfkit.cache import RedisService
from perfkit.cache._base import CONNECTION_ERRORS
from perfkit.cache._codec import MISSING, encode, entry_prefix
from perfkit.cache._flight import call_loader
from perfkit.contrib.django._values import INCR, Values, milliseconds, perfkit_ttl


class BackendOps:
    """Django's cache operations on one service: keys are Django's (made and validated by
    the backend), ``seconds`` its backend timeouts (None: forever, 0: not kept)."""

    def __init__(self, service: RedisService, values: Values) -> None:
        self.service = service
        self.values = values
        self._incr = service.client.register_script(INCR)

    def _atomic(self, full: str, command: Callable[[], Any], fallback: Callable[[], Any]) -> Any:
        """``command`` writing ``full`` on Redis, or ``fallback`` (through the service,
        which serves from memory) while Redis is away."""
        if not self.service.fallback_active:
            try:
                result = command()
            except CONNECTION_ERRORS as exc:
                self.service._fall_back(exc)
            else:
                # Written behind the service's back: its L1 copy (if any) is stale now,
                # before Redis's invalidation push arrives.
                self.service._near_evict([full])
                return result
        return fallback()

    def add(self, name: str, value: Any, seconds: float | None) -> bool:
        """Set ``name`` only if it is not set; True if it was set."""
        full = self.service._key(name)
        stored = self.values.dump(value, full)
        # The untagged layout the service writes (see perfkit.cache._codec).
        payload = entry_prefix([]) + encode(stored, key=name)
        client = self.service.client

        def command() -> bool:
            if seconds == 0:  # Django: "added" if absent, but not kept
                added = bool(client.set(full, payload, nx=True))
                if added:
                    client.delete(full)
                return added
            ms = None if seconds is None else milliseconds(seconds)
            return bool(client.set(full, payload, nx=True, px=ms))

        def fallback() -> bool:
            if self.get(name, MISSING) is not MISSING:
                return False
            if seconds != 0:
                self.service.set(name, stored, perfkit_ttl(seconds))
            return True

        return bool(self._atomic(full, command, fallback))

    def get(self, name: str, default: Any) -> Any:
        """The value at ``name``, or ``default``."""
        stored = self.service.get(name, MISSING)
        if stored is MISSING:
            return default
        value = self.values.load(stored, self.service._key(name))
        return default if value is MISSING else value

    def set(self, name: str, value: Any, seconds: float | None, tags: Iterable[str] = ()) -> None:
        """Cache ``value`` at ``name`` (``seconds`` 0: remove it)."""
        if seconds == 0:
            self.service.delete(name)
            return
        stored = self.values.dump(value, self.service._key(name))
        self.service.set(name, stored, perfkit_ttl(seconds), tags)

    def touch(self, name: str, seconds: float | None) -> bool:
        """Give ``name`` a new timeout; False if it is not cached."""
        if seconds == 0:
            return self.delete(name)
        full = self.service._key(name)
        client = self.service.client

        def command() -> bool:
            if seconds is None:
                pipe = client.pipeline(transaction=False)
                pipe.exists(full)
                pipe.persist(full)
                return bool(pipe.execute()[0])
            return bool(client.pexpire(full, milliseconds(seconds)))

        def fallback() -> bool:
            stored = self.service.get(name, MISSING)
            if stored is MISSING:
                return False
            self.service.set(name, stored, perfkit_ttl(seconds))
            return True

        return bool(self._atomic(full, command, fallback))

    def delete(self, name: str) -> bool:
        """Remove ``name``; True if it was there."""
        return self.service.delete(name) > 0

    def get_many(self, names: dict[str, str]) -> dict[str, Any]:
        """The cached values of ``names`` (name -> the caller's key), by the caller's keys."""
        found = self.service.get_many(list(names))
        values = {}
        for name, stored in found.items():
            value = self.values.load(stored, self.service._key(name))
            if value is not MISSING:
                values[names[name]] = value
        return values

    def has_key(self, name: str) -> bool:
        """Whether ``name`` holds a value ``get`` returns (a cached None counts)."""
        return self.get(name, MISSING) is not MISSING

    def incr(self, name: str, delta: int, key: str) -> int:
        """Add ``delta`` to the integer at ``name`` (atomic on Redis, TTL kept);
        ``ValueError`` naming ``key`` if it is not cached."""
        full = self.service._key(name)

        def command() -> Any:
            return self._incr(keys=[full], args=[delta])

        def fallback() -> Any:
            return [1]

        answer = self._atomic(full, command, fallback)
        if answer[0] == 2:
            return int(answer[1])
        # Not a plain integer entry (tagged, pickled, in memory): read, add, write back.
        stored: Any = MISSING if answer[0] == 0 else self.get(name, MISSING)
        if stored is MISSING:
            raise ValueError(f"Key '{key}' not found")
        value: int = stored + delta
        self.service.set(name, self.values.dump(value, full))
        return value

    def set_many(
        self, named: dict[str, Any], seconds: float | None, tags: Iterable[str] = ()
    ) -> None:
        """Cache every item in one round trip."""
        if seconds == 0:
            self.service.delete(*named)
            return
        stored = {
            name: self.values.dump(value, self.service._key(name)) for name, value in named.items()
        }
        self.service.set_many(stored, perfkit_ttl(seconds), tags)

    def delete_many(self, names: list[str]) -> None:
        """Remove ``names``."""
        if names:
            self.service.delete(*names)

    def clear(self) -> None:
        """Delete everything in the service's namespace."""
        self.service.clear()

    def get_or_load(
        self, name: str, loader: Callable[[], Any], seconds: float | None, tags: Iterable[str] = ()
    ) -> Any:
        """The value at ``name``; on a miss ``loader()``'s, cached, stampede-protected."""
        if seconds == 0:
            return call_loader(loader)
        full = self.service._key(name)

        def fill() -> Any:
            return self.values.dump(call_loader(loader), full)

        stored = self.service.get_or_set(name, fill, perfkit_ttl(seconds), tags)
        value = self.values.load(stored, full)
        # An entry that is not ours (a bad signature) is not served: the loader's value is.
        return call_loader(loader) if value is MISSING else value

    def invalidate_tags(self, tags: Iterable[str]) -> None:
        """Make every value set with any of ``tags`` a miss, in every process."""
        self.service.invalidate_tags(tags)
