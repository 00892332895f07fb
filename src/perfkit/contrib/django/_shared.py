"""What every PerfkitCache of one configuration shares in a process.

Django makes a backend object per thread (and per async context); they share one
:class:`Shared`: the sync service (one connection pool, one memory fallback, one set of
counters), the values (one signing key, one count of bad signatures), and one
AsyncRedisService per running event loop. A redis.asyncio client belongs to the loop it
first ran in, and Django may run several loops (an ASGI server's, and a new one for each
``async_to_sync`` call made outside of one, as in sync tests): each loop gets its own
service, closed when the loop shuts down (see :meth:`Shared._until_loop_ends`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import NamedTuple

from perfkit.cache import AsyncRedisService, RedisService
from perfkit.contrib.django._ops import BackendOps
from perfkit.contrib.django._ops_async import AsyncBackendOps
from perfkit.contrib.django._values import Values, values_for


class Config(NamedTuple):
    """A backend's configuration, as far as Redis and values go."""

    location: str | None
    namespace: str | None
    l1: bool
    serializer: str


class Shared:
    """The sync operations, and one set of async operations per running event loop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.values: Values = values_for(config.serializer)
        service = RedisService(config.location, namespace=config.namespace, l1=config.l1)
        self.ops = BackendOps(service, self.values)
        self._lock = threading.Lock()
        self._loops: dict[asyncio.AbstractEventLoop, AsyncBackendOps] = {}
        # Each loop's keeper (an async generator, below): held here, else it is collected.
        self._keepers: dict[asyncio.AbstractEventLoop, AsyncIterator[None]] = {}

    async def async_ops(self) -> AsyncBackendOps:
        """The async operations of the running event loop."""
        loop = asyncio.get_running_loop()
        ops = self._loops.get(loop)
        if ops is None:
            ops = await self._start(loop)
        return ops

    async def _start(self, loop: asyncio.AbstractEventLoop) -> AsyncBackendOps:
        config = self.config
        service = AsyncRedisService(config.location, namespace=config.namespace, l1=config.l1)
        ops = AsyncBackendOps(service, self.values)
        keeper = self._until_loop_ends(loop, service)
        # Runs to its yield at once (no other task of this loop gets in between): from now
        # on the loop knows the generator, and closes it at shutdown_asyncgens().
        await anext(keeper)
        with self._lock:
            # Loops closed without shutdown_asyncgens() (their services cannot be closed
            # now: that needs the loop) are forgotten.
            for closed in [other for other in self._loops if other.is_closed()]:
                del self._loops[closed]
                del self._keepers[closed]
            self._loops[loop] = ops
            self._keepers[loop] = keeper
        return ops

    async def _until_loop_ends(
        self, loop: asyncio.AbstractEventLoop, service: AsyncRedisService
    ) -> AsyncIterator[None]:
        """Close ``service`` when ``loop`` shuts down: asyncio.run(), asyncio.Runner,
        asgiref's async_to_sync and uvicorn all call ``loop.shutdown_asyncgens()`` before
        closing a loop, which closes every async generator still suspended in it; there is
        no other hook for the end of a loop."""
        try:
            yield
        finally:
            with self._lock:
                if self._loops.get(loop) is not None and self._loops[loop].service is service:
                    del self._loops[loop]
                    del self._keepers[loop]
            await service.close()


_shared: dict[Config, Shared] = {}
_shared_lock = threading.Lock()


def shared(config: Config) -> Shared:
    """The :class:`Shared` of ``config`` in this process."""
    with _shared_lock:
        found = _shared.get(config)
        if found is None:
            found = _shared[config] = Shared(config)
        return found
