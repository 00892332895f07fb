"""AsyncBackendOps: Django's cache operations on an AsyncRedisService, for PerfkitCache's
``a*`` methods. Its sync twin ``_ops.py`` is generated from this file by
``tools/async_to_sync.py``: edit this one, then run that script."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from perfkit.cache import AsyncRedisService
from perfkit.cache._base import CONNECTION_ERRORS
from perfkit.cache._codec import MISSING, encode, entry_prefix
from perfkit.cache._flight import acall_loader
from perfkit.contrib.django._values import INCR, Values, milliseconds, perfkit_ttl


class AsyncBackendOps:
    """Django's cache operations on one service: keys are Django's (made and validated by
    the backend), ``seconds`` its backend timeouts (None: forever, 0: not kept)."""

    def __init__(self, service: AsyncRedisService, values: Values) -> None:
        self.service = service
        self.values = values
        self._incr = service.client.register_script(INCR)

    async def _atomic(
        self,
        full: str,
        command: Callable[[], Awaitable[Any]],
        fallback: Callable[[], Awaitable[Any]],
    ) -> Any:
        """``command`` writing ``full`` on Redis, or ``fallback`` (through the service,
        which serves from memory) while Redis is away."""
        if not self.service.fallback_active:
            try:
                result = await command()
            except CONNECTION_ERRORS as exc:
                self.service._fall_back(exc)
            else:
                # Written behind the service's back: its L1 copy (if any) is stale now,
                # before Redis's invalidation push arrives.
                self.service._near_evict([full])
                return result
        return await fallback()

    async def add(self, name: str, value: Any, seconds: float | None) -> bool:
        """Set ``name`` only if it is not set; True if it was set."""
        full = self.service._key(name)
        stored = self.values.dump(value, full)
        # The untagged layout the service writes (see perfkit.cache._codec).
        payload = entry_prefix([]) + encode(stored, key=name)
        client = self.service.client

        async def command() -> bool:
            if seconds == 0:  # Django: "added" if absent, but not kept
                added = bool(await client.set(full, payload, nx=True))
                if added:
                    await client.delete(full)
                return added
            ms = None if seconds is None else milliseconds(seconds)
            return bool(await client.set(full, payload, nx=True, px=ms))

        async def fallback() -> bool:
            if await self.get(name, MISSING) is not MISSING:
                return False
            if seconds != 0:
                await self.service.set(name, stored, perfkit_ttl(seconds))
            return True

        return bool(await self._atomic(full, command, fallback))

    async def get(self, name: str, default: Any) -> Any:
        """The value at ``name``, or ``default``."""
        stored = await self.service.get(name, MISSING)
        if stored is MISSING:
            return default
        value = self.values.load(stored, self.service._key(name))
        return default if value is MISSING else value

    async def set(
        self, name: str, value: Any, seconds: float | None, tags: Iterable[str] = ()
    ) -> None:
        """Cache ``value`` at ``name`` (``seconds`` 0: remove it)."""
        if seconds == 0:
            await self.service.delete(name)
            return
        stored = self.values.dump(value, self.service._key(name))
        await self.service.set(name, stored, perfkit_ttl(seconds), tags)

    async def touch(self, name: str, seconds: float | None) -> bool:
        """Give ``name`` a new timeout; False if it is not cached."""
        if seconds == 0:
            return await self.delete(name)
        full = self.service._key(name)
        client = self.service.client

        async def command() -> bool:
            if seconds is None:
                pipe = client.pipeline(transaction=False)
                pipe.exists(full)
                pipe.persist(full)
                return bool((await pipe.execute())[0])
            return bool(await client.pexpire(full, milliseconds(seconds)))

        async def fallback() -> bool:
            stored = await self.service.get(name, MISSING)
            if stored is MISSING:
                return False
            await self.service.set(name, stored, perfkit_ttl(seconds))
            return True

        return bool(await self._atomic(full, command, fallback))

    async def delete(self, name: str) -> bool:
        """Remove ``name``; True if it was there."""
        return await self.service.delete(name) > 0

    async def get_many(self, names: dict[str, str]) -> dict[str, Any]:
        """The cached values of ``names`` (name -> the caller's key), by the caller's keys."""
        found = await self.service.get_many(list(names))
        values = {}
        for name, stored in found.items():
            value = self.values.load(stored, self.service._key(name))
            if value is not MISSING:
                values[names[name]] = value
        return values

    async def has_key(self, name: str) -> bool:
        """Whether ``name`` holds a value ``get`` returns (a cached None counts)."""
        return await self.get(name, MISSING) is not MISSING

    async def incr(self, name: str, delta: int, key: str) -> int:
        """Add ``delta`` to the integer at ``name`` (atomic on Redis, TTL kept);
        ``ValueError`` naming ``key`` if it is not cached."""
        full = self.service._key(name)

        async def command() -> Any:
            return await self._incr(keys=[full], args=[delta])

        async def fallback() -> Any:
            return [1]

        answer = await self._atomic(full, command, fallback)
        if answer[0] == 2:
            return int(answer[1])
        # Not a plain integer entry (tagged, pickled, in memory): read, add, write back.
        stored: Any = MISSING if answer[0] == 0 else await self.get(name, MISSING)
        if stored is MISSING:
            raise ValueError(f"Key '{key}' not found")
        value: int = stored + delta
        await self.service.set(name, self.values.dump(value, full))
        return value

    async def set_many(
        self, named: dict[str, Any], seconds: float | None, tags: Iterable[str] = ()
    ) -> None:
        """Cache every item in one round trip."""
        if seconds == 0:
            await self.service.delete(*named)
            return
        stored = {
            name: self.values.dump(value, self.service._key(name)) for name, value in named.items()
        }
        await self.service.set_many(stored, perfkit_ttl(seconds), tags)

    async def delete_many(self, names: list[str]) -> None:
        """Remove ``names``."""
        if names:
            await self.service.delete(*names)

    async def clear(self) -> None:
        """Delete everything in the service's namespace."""
        await self.service.clear()

    async def get_or_load(
        self,
        name: str,
        loader: Callable[[], Any],
        seconds: float | None,
        tags: Iterable[str] = (),
    ) -> Any:
        """The value at ``name``; on a miss ``loader()``'s, cached, stampede-protected."""
        if seconds == 0:
            return await acall_loader(loader)
        full = self.service._key(name)

        async def fill() -> Any:
            return self.values.dump(await acall_loader(loader), full)

        stored = await self.service.get_or_set(name, fill, perfkit_ttl(seconds), tags)
        value = self.values.load(stored, full)
        # An entry that is not ours (a bad signature) is not served: the loader's value is.
        return await acall_loader(loader) if value is MISSING else value

    async def invalidate_tags(self, tags: Iterable[str]) -> None:
        """Make every value set with any of ``tags`` a miss, in every process."""
        await self.service.invalidate_tags(tags)
