"""@cached_query's stampede protection: one loader for many callers, in a process (threads,
tasks) and across processes, and the lock's hand-over.

Hand-written, not generated: the callers are written in each twin's own concurrency (threads
for RedisService, tasks for AsyncRedisService), and the lock's hand-over is driven through
RedisService's steps. The rest of the decorator tests come from ``test_decorator_async.py``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from perfkit.cache import AsyncRedisService, RedisService, cached_query
from tests.cache.conftest import TEST_SETTINGS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.patient
def test_fifty_threads_run_the_loader_once(cache: RedisService) -> None:
    calls: list[int] = []
    barrier = threading.Barrier(50)

    @cached_query(ttl=60, cache=cache)
    def slow() -> list[int]:
        calls.append(1)
        time.sleep(0.2)
        return [1, 2, 3]

    results: list[object] = []

    def call() -> None:
        barrier.wait()
        results.append(slow())

    threads = [threading.Thread(target=call) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert results == [[1, 2, 3]] * 50


@pytest.mark.patient
async def test_hundred_tasks_run_the_loader_once(acache: AsyncRedisService) -> None:
    calls: list[int] = []

    @cached_query(ttl=60, tags=["t"], cache=acache)
    async def slow(x: int) -> dict[str, int]:
        calls.append(1)
        await asyncio.sleep(0.2)
        return {"x": x}

    results = await asyncio.gather(*(slow(1) for _ in range(100)))
    assert len(calls) == 1
    assert results == [{"x": 1}] * 100
    assert await slow.refresh(1) == {"x": 1}  # type: ignore[attr-defined]
    assert len(calls) == 2


async def test_loader_error_reaches_waiters_and_is_not_cached(acache: AsyncRedisService) -> None:
    calls: list[int] = []

    @cached_query(cache=acache)
    async def failing() -> int:
        calls.append(1)
        await asyncio.sleep(0.05)
        raise RuntimeError("database down")

    results = await asyncio.gather(*(failing() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results), results
    assert len(calls) == 1
    with pytest.raises(RuntimeError):
        await failing()
    assert len(calls) == 2


def _lock_held(service: RedisService, lock_key: str) -> bool:
    """Whether a stampede lock is held (a key of its own in a cluster, else a member of the
    service's lock set)."""
    if service._cluster:
        return bool(service.client.exists(lock_key))
    return service.client.zscore(service._lock_set, lock_key) is not None


def test_a_waiter_that_gets_the_lock_after_the_holder_stored_does_not_load_again(
    cache: RedisService, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_process = RedisService(cache.client, namespace=cache.namespace, settings=TEST_SETTINGS)
    lock_key = cache._lock_key(cache._key("report"))
    their_token, _ = other_process._claim_lock(lock_key, (), 0)
    assert their_token is not None
    real_claim = cache._claim_lock
    claims: list[str] = []

    def claim(key: str, tags: tuple[str, ...], ttl_ms: int) -> tuple[str | None, list[bytes]]:
        claims.append(key)
        if len(claims) == 2:
            # The holder stores its value and lets go after the waiter's last look.
            other_process.set("report", "theirs", tags=["reports"])
            other_process._unlock(lock_key, their_token)
        return real_claim(key, tags, ttl_ms)

    monkeypatch.setattr(cache, "_claim_lock", claim)
    loads: list[int] = []
    value = cache.get_or_set("report", lambda: loads.append(1) or "ours", tags=["reports"])
    assert (value, loads) == ("theirs", [])
    assert len(claims) == 2
    assert not _lock_held(cache, lock_key)  # the lock it took is given back


@pytest.mark.slow
def test_four_processes_run_the_loader_once(
    redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    start_at = time.time() + 2.0
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.cache._stampede_worker",
                redis_url,
                namespace,
                str(start_at),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=60)[0].split() for process in processes]
    assert outputs == [["25", "0"]] * 4
    assert redis_client.get(f"{namespace}:loader-calls") == b"1"


class _StoreBeforeClaim(redis.Redis):
    """A client whose first script call (the stampede lock's claim) lets ``before`` run
    first: another process storing the value and letting go of the lock in between."""

    before: Callable[[], object] | None = None

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if args[0] == "EVALSHA" and self.before is not None:
            before, self.before = self.before, None
            before()
        return super().execute_command(*args, **options)


def test_a_value_stored_between_the_miss_and_the_claim_is_not_loaded_again(
    redis_url: str, namespace: str
) -> None:
    other = RedisService(redis_url, namespace=namespace, settings=TEST_SETTINGS)
    client = _StoreBeforeClaim.from_url(redis_url)
    cache = RedisService(client, namespace=namespace, settings=TEST_SETTINGS)
    calls: list[str] = []

    def report(who: str) -> dict[str, str]:
        calls.append(who)
        return {"by": who}

    # This process misses; before its claim, the other one loads, stores and unlocks.
    client.before = lambda: other.get_or_set("r", lambda: report("other"), tags=["t"])
    assert cache.get_or_set("r", lambda: report("this"), tags=["t"]) == {"by": "other"}
    assert calls == ["other"]
    cache.close()
    other.clear()
    other.close()
    client.close()
