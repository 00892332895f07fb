"""Automatic pipelining of the cache's reads (like ioredis's ``enableAutoPipelining``).

Every read of the service (values and tag generations) is one ``MGET``. In the async
service, ``MGET``s issued while another is in flight are collected until the event loop
has run every task that was ready, then sent as one ``MGET`` whose reply is split back
between them: 64 tasks missing L1 cost one round trip and one connection instead of 64.

A lone read (nothing in flight) is sent at once, so concurrency 1 pays no extra loop
iteration. Errors reach each caller of a batch, which degrades as it would alone.

The miss path's writes are coalesced the same way (``AsyncCoalescer``): the stampede-lock
claims of concurrent misses go to Redis as one script call, and so do the stores that
release those locks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from perfkit.cache._base import CONNECTION_ERRORS

# How a batch is sent: the service's own MGET (AsyncRedisService._send_mget).
Read = Callable[[list[str]], Awaitable[list[bytes | None]]]

# Keys per coalesced MGET: past this a batch is sent and the next one starts.
MAX_BATCH_KEYS = 1000
# Calls per coalesced script call (each adds a few arguments to one Lua call's stack).
MAX_BATCH_ITEMS = 500

G = TypeVar("G")
T = TypeVar("T")
R = TypeVar("R")


class _Batch:
    __slots__ = ("callers", "keys")

    def __init__(self) -> None:
        self.keys: list[str] = []
        # Each caller's future and where its keys start and end in ``keys``.
        self.callers: list[tuple[asyncio.Future[list[bytes | None]], int, int]] = []


class AsyncBatcher:
    """The async service's reads: concurrent ``MGET``s coalesced into one (see module)."""

    __slots__ = ("_batch", "_enabled", "_in_flight", "_read", "_tasks")

    def __init__(self, read: Read, enabled: bool) -> None:
        self._read = read
        self._enabled = enabled
        self._in_flight = 0
        self._batch: _Batch | None = None
        # Strong references: the loop keeps only weak ones to running tasks.
        self._tasks: set[asyncio.Task[None]] = set()

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        """The values at ``keys`` (None where missing), in one MGET with concurrent reads."""
        if not self._in_flight or not self._enabled:
            self._in_flight += 1
            try:
                return await self._read(keys)
            finally:
                self._in_flight -= 1
        batch = self._batch
        if batch is None or len(batch.keys) >= MAX_BATCH_KEYS:
            batch = self._batch = _Batch()
            # Sent after every task that is ready now has run (and added its keys): call_soon
            # runs in the loop's next iteration.
            asyncio.get_running_loop().call_soon(self._send, batch)
        start = len(batch.keys)
        batch.keys.extend(keys)
        # One future per caller: cancelling one caller must not cancel the others' reply.
        future: asyncio.Future[list[bytes | None]] = asyncio.get_running_loop().create_future()
        batch.callers.append((future, start, len(batch.keys)))
        return await future

    def _send(self, batch: _Batch) -> None:
        if self._batch is batch:
            self._batch = None
        # A task, not the leading caller's own await: cancelling that caller must not leave
        # the others waiting.
        task = asyncio.ensure_future(self._execute(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, batch: _Batch) -> None:
        self._in_flight += 1
        try:
            values = await self._read(batch.keys)
        except CONNECTION_ERRORS as exc:  # each caller would have lost it alone: degrades
            for future, _, _ in batch.callers:
                if not future.done():
                    future.set_exception(exc)
            return
        except Exception:
            # Refused (an ACL on some of the keys...): one caller's keys must not make
            # another's read fail, so each is sent on its own, as without batching.
            await asyncio.gather(*(self._resend(batch, *caller) for caller in batch.callers))
            return
        except BaseException:  # cancelled (the loop closing): so are its callers
            for future, _, _ in batch.callers:
                future.cancel()
            raise
        finally:
            self._in_flight -= 1
        for future, start, end in batch.callers:
            if not future.done():
                future.set_result(values[start:end])

    async def _resend(
        self, batch: _Batch, future: asyncio.Future[list[bytes | None]], start: int, end: int
    ) -> None:
        try:
            values = await self._read(batch.keys[start:end])
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(values)


class AsyncCoalescer(Generic[G, T, R]):
    """Calls made by concurrent tasks, sent as one per group (the miss path's lock claims and
    releases: one script call over many keys instead of one per key).

    A call waits for the loop to run every task that is ready (call_soon), so the misses that
    arrive together share one round trip. ``send(group, items)`` returns one result per item;
    its error reaches every caller of the batch. A caller cancelled meanwhile gets nothing:
    ``orphan(group, item, result)`` undoes what was done for it (a lock it took)."""

    __slots__ = ("_orphan", "_pending", "_send", "_tasks")

    def __init__(
        self,
        send: Callable[[G, list[T]], Awaitable[list[R]]],
        orphan: Callable[[G, T, R], None] | None = None,
    ) -> None:
        self._send = send
        self._orphan = orphan
        self._pending: dict[G, list[tuple[T, asyncio.Future[R]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, group: G, item: T) -> R:
        loop = asyncio.get_running_loop()
        calls = self._pending.get(group)
        if calls is None or len(calls) >= MAX_BATCH_ITEMS:
            calls = self._pending[group] = []
            loop.call_soon(self._start, group, calls)
        future: asyncio.Future[R] = loop.create_future()
        calls.append((item, future))
        return await future

    def _start(self, group: G, calls: list[tuple[T, asyncio.Future[R]]]) -> None:
        if self._pending.get(group) is calls:
            del self._pending[group]
        # A task of its own: cancelling one caller must not cancel the others' call.
        task = asyncio.ensure_future(self._execute(group, calls))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, group: G, calls: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._send(group, [item for item, _ in calls])
        except Exception as exc:
            for _, future in calls:
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved: a cancelled caller never reads it
            return
        except BaseException:  # cancelled (the loop closing): so are its callers
            for _, future in calls:
                future.cancel()
            raise
        for (item, future), result in zip(calls, results, strict=True):
            if not future.done():
                future.set_result(result)
            elif self._orphan is not None:
                self._orphan(group, item, result)
