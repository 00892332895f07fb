"""A process of the cross-process stale-window tests: one cached function, driven by commands
on stdin, one JSON line of answer each.

    python -m tests.cache._stale_worker URL NAMESPACE sync|async L1(0|1) TTL STALE_TTL SLEEP

The loader counts its calls in Redis (``<namespace>:loader-calls``), sleeps ``SLEEP`` seconds
and returns what ``<namespace>:source`` holds (the "database"). Commands:

- ``call``: one call; prints ``[value, seconds]``.
- ``burst N AT``: N concurrent calls (threads, or tasks) at wall-clock time AT; prints a
  list of ``[value, seconds]``.
- ``quit``.

The async worker reads stdin in a thread, so its background refreshes run meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from typing import Any

import redis
import redis.asyncio

from perfkit import Settings
from perfkit.cache import AsyncRedisService, RedisService, cached_query

SETTINGS = Settings(cache_lock_wait=10.0, redis_socket_timeout=5.0, redis_connect_timeout=5.0)


def sync_main(url: str, namespace: str, l1: bool, ttl: float, stale: float, sleep: float) -> None:
    counter = redis.Redis.from_url(url)
    cache = RedisService(url, namespace=namespace, settings=SETTINGS, l1=l1)
    if l1 and not cache.wait_l1_ready(30):
        raise SystemExit("L1 tracking not ready")

    @cached_query(ttl=ttl, tags=["report"], key="report:{day}", cache=cache, stale_ttl=stale)
    def report(day: str) -> str:
        counter.incr(f"{namespace}:loader-calls")
        time.sleep(sleep)
        return (counter.get(f"{namespace}:source") or b"").decode()

    def timed_call() -> list[Any]:
        start = time.perf_counter()
        value = report("d")
        return [value, time.perf_counter() - start]

    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "quit":
            break
        if command[0] == "call":
            print(json.dumps(timed_call()), flush=True)
        elif command[0] == "burst":
            results: list[list[Any]] = []
            time.sleep(max(0.0, float(command[2]) - time.time()))
            threads = [
                threading.Thread(target=lambda done=results: done.append(timed_call()))
                for _ in range(int(command[1]))
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            print(json.dumps(results), flush=True)
    cache.close()


async def async_main(
    url: str, namespace: str, l1: bool, ttl: float, stale: float, sleep: float
) -> None:
    counter = redis.asyncio.Redis.from_url(url)
    cache = AsyncRedisService(url, namespace=namespace, settings=SETTINGS, l1=l1)
    if l1 and not cache.wait_l1_ready(30):
        raise SystemExit("L1 tracking not ready")

    @cached_query(ttl=ttl, tags=["report"], key="report:{day}", cache=cache, stale_ttl=stale)
    async def report(day: str) -> str:
        await counter.incr(f"{namespace}:loader-calls")
        await asyncio.sleep(sleep)
        return (await counter.get(f"{namespace}:source") or b"").decode()

    async def timed_call() -> list[Any]:
        start = time.perf_counter()
        value = await report("d")
        return [value, time.perf_counter() - start]

    print("ready", flush=True)
    while line := await asyncio.to_thread(sys.stdin.readline):
        command = line.split()
        if command[0] == "quit":
            break
        if command[0] == "call":
            print(json.dumps(await timed_call()), flush=True)
        elif command[0] == "burst":
            await asyncio.sleep(max(0.0, float(command[2]) - time.time()))
            calls = [timed_call() for _ in range(int(command[1]))]
            print(json.dumps(await asyncio.gather(*calls)), flush=True)
    await cache.close()
    await counter.aclose()


if __name__ == "__main__":
    url, namespace, kind, l1, ttl, stale, sleep = sys.argv[1:8]
    options = (url, namespace, l1 == "1", float(ttl), float(stale), float(sleep))
    if kind == "async":
        asyncio.run(async_main(*options))
    else:
        sync_main(*options)
