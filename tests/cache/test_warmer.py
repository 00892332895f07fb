"""Cache warming: on demand, on a schedule (thread and task), failures isolated."""

from __future__ import annotations

import asyncio
import threading
import time
from itertools import pairwise

import pytest

from perfkit.cache import (
    AsyncCacheWarmer,
    CacheWarmer,
    RedisService,
    default_warmer,
    register_warmer,
)


def test_warm_runs_all_or_named_and_isolates_failures(cache: RedisService) -> None:
    warmer = CacheWarmer(delay=0, interval=60)

    @warmer.register("popular_products")
    def popular() -> int:
        cache.set_many({"product:1": 1, "product:2": 2})
        return 2

    @warmer.register("broken")
    def broken() -> int:
        raise RuntimeError("leaderboard query failed")

    @warmer.register("categories")
    async def categories() -> int:
        cache.set("categories", ["a"])
        return 1

    results = {r.name: r for r in warmer.warm()}
    assert list(results) == ["popular_products", "broken", "categories"]
    assert results["popular_products"].ok and results["popular_products"].keys_written == 2
    assert not results["broken"].ok
    assert results["broken"].error == "RuntimeError: leaderboard query failed"
    assert results["categories"].ok and results["categories"].keys_written == 1
    assert cache.get_many(["product:1", "categories"]) == {"product:1": 1, "categories": ["a"]}
    assert [r.name for r in warmer.warm(["categories"])] == ["categories"]
    with pytest.raises(ValueError, match="nope"):
        warmer.warm(["nope"])


def _every(runs: list[float], interval: float) -> bool:
    """Whether ``runs`` (monotonic times) are at least ``interval`` apart (1 ms of slack:
    the timed waits may wake a hair early)."""
    return all(later - earlier >= interval - 0.001 for earlier, later in pairwise(runs))


def test_thread_schedule_runs_after_delay_then_every_interval() -> None:
    warmer = CacheWarmer(delay=0.2, interval=0.2)
    runs: list[float] = []
    three = threading.Event()

    def tick() -> None:
        runs.append(time.monotonic())
        if len(runs) == 3:
            three.set()

    warmer.register("tick", tick)
    started = time.monotonic()
    warmer.start()
    schedule = warmer._thread
    assert three.wait(30), f"{len(runs)} rounds in 30 s"
    warmer.stop()
    assert schedule is not None and not schedule.is_alive()  # stopped: no round after this
    assert runs[0] - started >= 0.2  # not before the delay
    assert _every(runs, 0.2), runs


async def test_async_twin_runs_the_schedule_as_a_task_and_warms_on_demand() -> None:
    warmer = CacheWarmer(delay=0, interval=0.1)
    runs: list[float] = []
    three = asyncio.Event()

    async def tick() -> int:
        runs.append(time.monotonic())
        if len(runs) == 3:
            three.set()
        return 0

    warmer.register("tick", tick)
    awarmer = AsyncCacheWarmer.of(warmer)
    assert AsyncCacheWarmer.of(warmer) is awarmer
    assert awarmer.names == ["tick"]
    await awarmer.start()
    schedule = awarmer._task
    await asyncio.wait_for(three.wait(), timeout=30)
    await awarmer.stop()
    assert schedule is not None and schedule.done()  # stopped: no round after this
    assert _every(runs, 0.1), runs
    count = len(runs)
    results = await awarmer.warm()
    assert [r.ok for r in results] == [True]
    assert warmer.last_results == results
    assert len(runs) == count + 1


def test_register_warmer_uses_the_default_warmer() -> None:
    @register_warmer("test_default_registration")
    def warm() -> int:
        return 3

    assert "test_default_registration" in default_warmer().names
    (result,) = default_warmer().warm(["test_default_registration"])
    assert result.keys_written == 3


def test_bad_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        CacheWarmer(delay=0, interval=0)
