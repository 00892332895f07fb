"""Sync or async: the one place perfkit asks whether a callable or a value is async.

Parts accept callbacks that may be either (warmers, loaders, collectors' sources, the admin's
``authorize``); every such check goes through these helpers (starlette's
``_utils.is_async_callable`` is the model) rather than ``inspect`` calls spread around.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeGuard, TypeVar

__all__ = ["discard_awaitable", "is_async_callable", "resolve", "resolve_blocking"]

T = TypeVar("T")


def is_async_callable(obj: object) -> TypeGuard[Callable[..., Awaitable[Any]]]:
    """Whether calling ``obj`` returns an awaitable: a coroutine function, a
    ``functools.partial`` of one, or an object whose ``__call__`` is one."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or (
        callable(obj) and inspect.iscoroutinefunction(obj.__call__)
    )


async def resolve(value: T | Awaitable[T]) -> T:
    """``value``, awaited first if it is awaitable (what a sync-or-async callback returned)."""
    if inspect.isawaitable(value):
        return await value
    return value


def resolve_blocking(value: Any) -> Any:
    """``value``, or, if it is awaitable, its result run to completion in a new event loop
    (sync code given an async callback; never from inside a running loop)."""
    if inspect.isawaitable(value):
        return asyncio.run(resolve(value))
    return value


def discard_awaitable(value: object) -> bool:
    """True if ``value`` is awaitable, which sync code cannot use: it is closed first, so that
    a never-awaited coroutine does not warn."""
    if not inspect.isawaitable(value):
        return False
    close = getattr(value, "close", None)
    if close is not None:
        close()
    return True
