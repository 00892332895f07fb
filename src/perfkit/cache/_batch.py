"""Automatic pipelining of the cache's reads (like ioredis's ``enableAutoPipelining``).

Every read of the service (values and tag generations) is one ``MGET``. In the async
service, ``MGET``s issued while another is in flight are collected until the event loop
has run every task that was ready, then sent as one ``MGET`` whose reply is split back
between them: 64 tasks missing L1 cost one round trip and one connection instead of 64.

A lone read (nothing in flight) is sent at once, so concurrency 1 pays no extra loop
iteration. Errors reach each caller of a batch, which degrades as it would alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from perfkit.cache._base import CONNECTION_ERRORS

# How a batch is sent: the service's own MGET (AsyncRedisService._send_mget).
Read = Callable[[list[str]], Awaitable[list[bytes | None]]]

# Keys per coalesced MGET: past this a batch is sent and the next one starts.
MAX_BATCH_KEYS = 1000


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
