"""Loaders that straddle a tag invalidation: their callers get what they computed, no later
reader does.

Hand-written, not generated: the races are written in each twin's own concurrency (threads for
RedisService, tasks for AsyncRedisService). The rest of the tag tests come from
``test_tags_async.py``."""

from __future__ import annotations

import asyncio
import threading

from perfkit.cache import AsyncRedisService, RedisService
from tests.cache.conftest import eventually


def test_slow_loader_racing_invalidation_is_not_served(cache: RedisService) -> None:
    started, release = threading.Event(), threading.Event()
    results: list[object] = []

    def slow_loader() -> str:
        started.set()
        release.wait(5)
        return "filled before the invalidation"

    worker = threading.Thread(
        target=lambda: results.append(cache.get_or_set("p", slow_loader, tags=["products"]))
    )
    worker.start()
    assert started.wait(5)
    cache.invalidate_tags(["products"])  # while the loader runs
    release.set()
    worker.join(5)
    assert results == ["filled before the invalidation"]  # its caller gets what it computed
    # ...but no later reader may: the next read misses and loads afresh.
    assert cache.get("p", "miss") == "miss"
    assert cache.get_or_set("p", lambda: "fresh", tags=["products"]) == "fresh"
    assert cache.get("p") == "fresh"


async def test_async_slow_loader_racing_invalidation(acache: AsyncRedisService) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_loader() -> str:
        started.set()
        await release.wait()
        return "old"

    task = asyncio.create_task(acache.get_or_set("p", slow_loader, tags=["products"]))
    await asyncio.wait_for(started.wait(), 5)
    await acache.invalidate_tags(["products"])
    release.set()
    assert await task == "old"
    assert await acache.get("p", "miss") == "miss"


def test_caller_joining_a_loader_after_invalidation_gets_a_fresh_value(
    cache: RedisService,
) -> None:
    """A caller that starts after invalidate_tags returned, while a loader that began
    before it still runs, must not be handed that loader's (old) value."""
    started, release = threading.Event(), threading.Event()
    version = {"price": 1}
    calls: list[int] = []

    def loader() -> int:
        calls.append(version["price"])
        if len(calls) == 1:
            started.set()
            release.wait(5)
            return 1  # read before the update below
        return version["price"]

    results: dict[str, object] = {}
    first = threading.Thread(
        target=lambda: results.update(first=cache.get_or_set("p", loader, tags=["t"]))
    )
    first.start()
    assert started.wait(5)
    version["price"] = 2
    cache.invalidate_tags(["t"])
    late = threading.Thread(
        target=lambda: results.update(late=cache.get_or_set("p", loader, tags=["t"]))
    )
    late.start()
    # The late caller joins the first caller's loader (in this process: its single flight).
    eventually(lambda: cache._flights.waiting(cache._key("p")) == 1, timeout=30)
    release.set()
    first.join(5)
    late.join(5)
    assert results == {"first": 1, "late": 2}
    assert cache.get("p") == 2
