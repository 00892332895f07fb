"""Loaders racing on a Redis Cluster: an invalidation while one runs, and one loader for many
callers, with the keys, tags and locks spread over the slots.

Hand-written, not generated: the callers are written in each twin's own concurrency (threads
for RedisService, tasks for AsyncRedisService). The rest of the cluster tests come from
``test_cluster_async.py``."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from perfkit.cache import AsyncRedisService, RedisService, cached_query

# The cache fixtures on the session's cluster only.
pytestmark = pytest.mark.parametrize("server_kind", ["cluster"])


def test_slow_loader_racing_invalidation(cache: RedisService) -> None:
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "old"

    worker = threading.Thread(target=lambda: cache.get_or_set("p", slow, tags=["products", "c:1"]))
    worker.start()
    assert started.wait(5)
    cache.invalidate_tags(["c:1"])
    release.set()
    worker.join(5)
    assert cache.get("p", "miss") == "miss"
    assert cache.get_or_set("p", lambda: "new", tags=["products", "c:1"]) == "new"
    assert cache.get("p") == "new"


def test_stampede_and_decorator(cache: RedisService) -> None:
    calls: list[int] = []
    barrier = threading.Barrier(30)

    @cached_query(ttl=60, tags=["report:{day}"], cache=cache)
    def report(day: str) -> dict[str, int]:
        calls.append(1)
        time.sleep(0.2)
        return {"orders": 1}

    def call() -> None:
        barrier.wait()
        report("mon")

    threads = [threading.Thread(target=call) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    cache.invalidate_tags(["report:mon"])
    assert report("mon") == {"orders": 1} and len(calls) == 2


async def test_tasks_run_the_loader_once(acache: AsyncRedisService) -> None:
    await acache.set_many({f"a{i}": i for i in range(50)}, tags=["t"])
    assert await acache.get_many([f"a{i}" for i in range(50)]) == {f"a{i}": i for i in range(50)}
    calls: list[int] = []

    async def loader() -> int:
        calls.append(1)
        await asyncio.sleep(0.1)
        return 7

    assert (
        await asyncio.gather(*(acache.get_or_set("g", loader, tags=["t"]) for _ in range(20)))
        == [7] * 20
    )
    assert len(calls) == 1
    await acache.invalidate_tags(["t"])
    assert await acache.get("a1") is None and await acache.get("g") is None
