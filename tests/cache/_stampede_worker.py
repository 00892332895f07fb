"""A process of the cross-process stampede test: 25 threads call one cached function at a
given wall-clock moment; the loader counts its calls in Redis."""

from __future__ import annotations

import sys
import threading
import time

import redis

from perfkit import Settings
from perfkit.cache import RedisService, cached_query


def main(url: str, namespace: str, start_at: float) -> None:
    counter = redis.Redis.from_url(url)
    # A long socket timeout: on a machine busy with other work, a command stalled past the
    # default 0.5 s would (rightly) fall back to memory and load there; this test is about
    # the lock.
    settings = Settings(cache_lock_wait=10.0, redis_socket_timeout=5.0, redis_connect_timeout=5.0)
    cache = RedisService(url, namespace=namespace, settings=settings)

    @cached_query(ttl=60, tags=["report"], cache=cache)
    def expensive_report(day: str) -> dict[str, int]:
        counter.incr(f"{namespace}:loader-calls")
        time.sleep(0.3)
        return {"orders": 42}

    results: list[object] = []
    time.sleep(max(0.0, start_at - time.time()))
    threads = [
        threading.Thread(target=lambda: results.append(expensive_report("2026-11-26")))
        for _ in range(25)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bad = [r for r in results if r != {"orders": 42}]
    print(len(results), len(bad))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
