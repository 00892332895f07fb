"""perfkit._acompat: the one helper that tells async callables and values apart."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from perfkit._acompat import discard_awaitable, is_async_callable, resolve, resolve_blocking


async def coroutine_function(x: int) -> int:
    return x + 1


def plain_function(x: int) -> int:
    return x + 1


class AsyncCallable:
    async def __call__(self, x: int) -> int:
        return x + 1


class SyncCallable:
    def __call__(self, x: int) -> int:
        return x + 1


@pytest.mark.parametrize(
    "obj",
    [
        coroutine_function,
        functools.partial(coroutine_function, 1),
        functools.partial(functools.partial(coroutine_function), 1),
        AsyncCallable(),
        AsyncCallable().__call__,
    ],
)
def test_is_async_callable_finds_coroutine_functions_behind_partials_and_objects(
    obj: Any,
) -> None:
    assert is_async_callable(obj)


@pytest.mark.parametrize(
    "obj",
    [plain_function, functools.partial(plain_function, 1), SyncCallable(), 3, None, "f"],
)
def test_is_async_callable_is_false_for_sync_callables_and_non_callables(obj: Any) -> None:
    assert not is_async_callable(obj)


async def test_resolve_awaits_awaitables_and_passes_values_through() -> None:
    assert await resolve(coroutine_function(1)) == 2
    assert await resolve(2) == 2
    assert await resolve(None) is None


def test_resolve_blocking_runs_an_awaitable_to_completion_from_sync_code() -> None:
    assert resolve_blocking(coroutine_function(4)) == 5
    assert resolve_blocking(5) == 5


def test_discard_awaitable_closes_a_coroutine_sync_code_cannot_use() -> None:
    coroutine = coroutine_function(1)
    assert discard_awaitable(coroutine)
    # Closed: it can no longer run (and does not warn "never awaited" when collected).
    with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
        coroutine.send(None)
    assert not discard_awaitable(2)
