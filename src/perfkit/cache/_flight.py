"""One loader per key at a time inside a process: threads (sync) or tasks (async) that miss
the same key while a loader runs wait for its result instead of running their own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from perfkit._acompat import resolve
from perfkit.cache._codec import Payload


class _Flight:
    __slots__ = ("done", "error", "followers", "payload")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.payload: Payload | None = None
        self.error: BaseException | None = None
        self.followers = 0


class Flights:
    """Single-flight for threads."""

    def __init__(self) -> None:
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()

    def run(
        self, key: str, compute: Callable[[], tuple[Any, Payload | None]]
    ) -> tuple[bool, Any, Payload | None]:
        """``(led, value, payload)``: the leader gets ``compute()``'s value; followers get
        ``led=False`` and the payload to decode themselves (each its own copy)."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
            else:
                flight.followers += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return False, None, flight.payload
        try:
            value, flight.payload = compute()
            return True, value, flight.payload
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def waiting(self, key: str) -> int:
        """How many callers wait for the loader running for ``key`` (0 when none runs)."""
        with self._lock:
            flight = self._flights.get(key)
            return 0 if flight is None else flight.followers


class AsyncFlights:
    """Single-flight for tasks of one event loop."""

    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Future[Payload | None]] = {}

    async def run(
        self, key: str, compute: Callable[[], Awaitable[tuple[Any, Payload | None]]]
    ) -> tuple[bool, Any, Payload | None]:
        """As :meth:`Flights.run`, for coroutines."""
        while (flight := self._flights.get(key)) is not None:
            # wait() leaves the shared flight alone if this follower is cancelled.
            await asyncio.wait([flight])
            if not flight.cancelled():
                return False, None, flight.result()
            # The leader was cancelled: try again, maybe as the leader.
        flight = self._flights[key] = asyncio.get_running_loop().create_future()
        try:
            value, payload = await compute()
            flight.set_result(payload)
            return True, value, payload
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            # Mark it retrieved: no "exception never retrieved" report when no follower waited.
            flight.exception()
            raise
        finally:
            del self._flights[key]


def call_loader(loader: Callable[[], Any]) -> Any:
    """Run a sync loader."""
    return loader()


async def acall_loader(loader: Callable[[], Any]) -> Any:
    """Run a loader that is a coroutine function or returns an awaitable (or a plain value)."""
    return await resolve(loader())
