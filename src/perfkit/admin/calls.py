"""How the one set of handlers does I/O under ASGI and under WSGI.

The handlers are coroutines and reach the parts only through a :class:`Caller`:

- under ASGI, :class:`ThreadCaller` awaits async parts natively and runs the blocking
  calls of sync parts (RQ, a sync Redis client) in a worker thread, so the event loop
  never blocks;
- under WSGI, :class:`InlineCaller` calls the sync parts directly, so a handler never
  really suspends and :func:`run_inline` drives it to the end with one ``send`` — no event
  loop, no thread, in the server's own request thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from perfkit._acompat import discard_awaitable, is_async_callable, resolve
from perfkit._errors import ConfigError

__all__ = ["Caller", "InlineCaller", "ThreadCaller", "run_inline"]

T = TypeVar("T")


class Caller:
    """Calls a part's method, sync or async, the way the host's model needs."""

    async def __call__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


class ThreadCaller(Caller):
    """ASGI: await coroutine functions, run blocking functions in a worker thread."""

    async def __call__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if is_async_callable(func):
            return await func(*args, **kwargs)
        return await resolve(await asyncio.to_thread(func, *args, **kwargs))


class InlineCaller(Caller):
    """WSGI: call directly; an async part cannot be served here."""

    async def __call__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        if discard_awaitable(result):
            raise ConfigError(
                f"{getattr(func, '__qualname__', func)!r} is async: serve the admin API with "
                "asgi_admin(), not wsgi_admin()"
            )
        return result


def run_inline(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (only :class:`InlineCaller` I/O) to its result."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError("an admin handler awaited real I/O under WSGI (use InlineCaller)")
