"""One background worker per service, for work that may not wait for the next call (applying
pending changes once Redis is back): a task on the running loop for the async service, a daemon
thread for the sync one. ``_aio.py`` uses the ``a`` names; the generated ``_sync.py`` the others."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any


def aspawn(work: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
    """Run ``work()`` as a task of the running loop."""
    return asyncio.get_running_loop().create_task(work(), name="perfkit-cache-replay")


async def astop(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait for it (when it belongs to the running loop)."""
    if task is None or task.done():
        return
    task.cancel()
    if task.get_loop() is asyncio.get_running_loop():
        with contextlib.suppress(asyncio.CancelledError):
            await task


def spawn(work: Callable[[], None]) -> threading.Thread:
    """Run ``work()`` in a daemon thread."""
    thread = threading.Thread(target=work, name="perfkit-cache-replay", daemon=True)
    thread.start()
    return thread


def stop(thread: threading.Thread | None) -> None:
    """Wait briefly for ``thread``, which watches the service's ``_closed`` flag."""
    if thread is not None and thread is not threading.current_thread():
        thread.join(2.0)
