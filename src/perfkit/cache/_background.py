"""Background work of a service, for what may not wait for the next call (applying pending
changes once Redis is back, refreshing a stale entry): a task on the running loop for the async
service, a daemon thread for the sync one. ``_aio.py`` uses the ``a``/``Async`` names; the
generated ``_sync.py`` the others."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any


def aspawn(
    work: Callable[[], Coroutine[Any, Any, None]], name: str = "perfkit-cache-replay"
) -> asyncio.Task[None]:
    """Run ``work()`` as a task of the running loop."""
    return asyncio.get_running_loop().create_task(work(), name=name)


async def astop(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait for it (when it belongs to the running loop)."""
    if task is None or task.done():
        return
    task.cancel()
    if task.get_loop() is asyncio.get_running_loop():
        with contextlib.suppress(asyncio.CancelledError):
            await task


def spawn(work: Callable[[], None], name: str = "perfkit-cache-replay") -> threading.Thread:
    """Run ``work()`` in a daemon thread."""
    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return thread


def stop(thread: threading.Thread | None) -> None:
    """Wait briefly for ``thread``, which watches the service's ``_closed`` flag."""
    if thread is not None and thread is not threading.current_thread():
        thread.join(2.0)


class AsyncWorkers:
    """Tasks started for one-off work, held until they end (the loop keeps only weak
    references to its tasks) and cancelled by :meth:`stop`."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        task = aspawn(work, name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            await astop(task)


class Workers:
    """Daemon threads started for one-off work; they watch the service's ``_closed`` flag."""

    def spawn(self, work: Callable[[], None], name: str) -> None:
        spawn(work, name)

    def stop(self) -> None:
        """Nothing to wait for: a thread ends with its work."""
