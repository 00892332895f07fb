"""An application process of the scale tests (``python -m tests.scale._app URL CONTROL N``).

Started once per test module, it runs the commands the test pushes on ``<CONTROL>:cmd:<N>``
(JSON) until it gets ``"quit"``. A command names a key namespace, a mode, the keys, the
number of threads and whether to use the L1 near cache. For each, the process builds a
``RedisService`` and one cached function, ``item(name)``, tagged ``items`` and
``item:{name}``, whose loader counts its calls with a Redis INCR, reads the item's version
from a Redis hash (the "database") and sleeps 100 ms. Once set up it says so (INCR
``<ns>:ready``) and waits for the test's go (BLPOP ``<ns>:go``, whose value is the
``time.monotonic()`` deadline of the run), then:

- ``stampede``: every thread reads every key once, in the same order, as fast as it can;
- ``read``: every thread reads one key until the deadline with random pauses (requests
  arriving), recording when each read started.

The reads, ``[[thread, start, end, name, version], ...]``, are pushed as JSON on
``<CONTROL>:out:<N>``.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from typing import Any

import redis

from perfkit import Settings
from perfkit.cache import RedisService, cached_query

LOADER_SECONDS = 0.1


def pop(client: redis.Redis, key: str, timeout: float) -> bytes | None:
    """BLPOP in 1 s steps (redis-py 8's default socket timeout is 5 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        popped = client.blpop([key], timeout=1)
        if popped is not None:
            return popped[1]
    return None


def run(client: redis.Redis, url: str, command: dict[str, Any], seed: int) -> list[list[Any]]:
    ns = command["namespace"]
    keys: list[str] = command["keys"]
    # Long socket and connect timeouts: these tests are about the lock and the tags, not
    # about falling back to memory (and loading without the lock) when a busy machine stalls
    # a command or a connect past the default 0.5 s.
    settings = Settings(cache_lock_wait=10.0, redis_socket_timeout=5.0, redis_connect_timeout=5.0)
    cache = RedisService(url, namespace=ns, settings=settings, l1=command["l1"])
    if command["l1"] and not cache.wait_l1_ready():
        raise SystemExit("the L1 near cache did not connect")

    @cached_query(ttl=60, tags=["items", "item:{name}"], cache=cache)
    def item(name: str) -> dict[str, int]:
        client.incr(f"{ns}:loads:{name}")
        version = int(client.hget(f"{ns}:db", name) or 0)
        time.sleep(LOADER_SECONDS)  # the slow query, after it read its snapshot
        return {"version": version}

    reads: list[list[Any]] = []
    lock = threading.Lock()

    def stampede(thread: int, deadline: float) -> None:
        for name in keys:
            start = time.monotonic()
            value = item(name)
            with lock:
                reads.append([thread, start, time.monotonic(), name, value["version"]])

    def read(thread: int, deadline: float) -> None:
        pause = random.Random(seed * 1000 + thread)
        name = keys[thread % len(keys)]
        mine = []
        while time.monotonic() < deadline:
            start = time.monotonic()
            value = item(name)
            mine.append([thread, start, time.monotonic(), name, value["version"]])
            time.sleep(pause.uniform(0.0, 0.04))
        with lock:
            reads.extend(mine)

    client.incr(f"{ns}:ready")
    go = pop(client, f"{ns}:go", 60)
    if go is None:
        raise SystemExit("no go from the test")
    work = stampede if command["mode"] == "stampede" else read
    threads = [
        threading.Thread(target=work, args=(n, float(go))) for n in range(command["threads"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cache.close()
    return reads


def main(url: str, control: str, number: int) -> None:
    client = redis.Redis.from_url(url)
    while True:
        command = pop(client, f"{control}:cmd:{number}", 300)
        if command is None or command == b'"quit"':
            break
        reads = run(client, url, json.loads(command), number)
        client.rpush(f"{control}:out:{number}", json.dumps(reads))
    client.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
