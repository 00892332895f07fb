"""The fault matrix's workload: one process of readers, writers and invalidators on a cache
service, checking every value it reads against the "database" (versions in shared memory).

Each key has one writer, so versions only grow. A writer bumps a key's version, then sets,
deletes or invalidates it in the cache, then publishes the version as *done* with the time
its call returned. A reader notes the done version before its call; a value older than it
is a stale read, whose age is how long before the read the first change past that value
returned (from a ring of the last ``HISTORY`` versions' times). Processes are spawned, so the
service under test runs in each process as it would in an app.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from typing import Any

KEYS_PER_ROLE = 12
ROLES = ("set", "tag")  # "set": written with set/delete, read with get/get_many;
# "tag": read with get_or_set under a tag, changed by invalidate_tags.
PAUSE = 0.004  # between one thread's calls: enough load, CPU left for the rest
TTL = 5
HISTORY = 256


@dataclass
class Shared:
    """State shared by the processes of one run (multiprocessing objects)."""

    versions: SynchronizedArray[int]  # the database: the current version of each key
    done: SynchronizedArray[int]  # the version whose cache call returned
    done_at: SynchronizedArray[float]  # per slot and version % HISTORY: when it returned
    recovered_at: Synchronized[float]  # when the fault ended (0 until then)
    back_at: SynchronizedArray[float]  # per process: seconds from then until back on Redis
    stop: Any  # an Event


def slots(processes: int) -> int:
    return processes * len(ROLES) * KEYS_PER_ROLE


def slot(owner: int, role: str, i: int) -> int:
    return (owner * len(ROLES) + ROLES.index(role)) * KEYS_PER_ROLE + i


def key_name(owner: int, role: str, i: int) -> str:
    return f"{role}:{owner}:{i}"


@dataclass
class Tally:
    ops: int = 0
    exceptions: dict[str, int] = field(default_factory=dict)
    first_traceback: str = ""
    stale: list[tuple[float, float]] = field(default_factory=list)  # (read start, age)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, exc: BaseException) -> None:
        with self.lock:
            name = type(exc).__name__
            self.exceptions[name] = self.exceptions.get(name, 0) + 1
            if not self.first_traceback:
                self.first_traceback = traceback.format_exc()


def run(
    index: int, processes: int, url: str, namespace: str, l1: bool, shared: Shared, out: Any
) -> None:
    """One process of the workload; puts its tally (a dict) on ``out`` when ``stop`` is set."""
    import structlog

    from perfkit import Settings
    from perfkit.cache import RedisService

    # The services log every state change; the matrix reads the tallies instead.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    settings = Settings(
        redis_socket_timeout=0.3,
        redis_connect_timeout=0.3,
        redis_retry_max_delay=0.5,
        cache_lock_wait=1.0,
        cache_fallback_ttl=1.0,
    )
    cache = RedisService(url, namespace=namespace, settings=settings, l1=l1)
    if l1:
        cache.wait_l1_ready(10)
    tally = Tally()
    back: list[float] = []

    def checked(name: str, start: float, floor: int, value: Any) -> None:
        if value is None or value >= floor:
            return
        age = start - shared.done_at[name_slot[name] * HISTORY + (value + 1) % HISTORY]
        with tally.lock:
            tally.stale.append((start, age))

    name_slot = {
        key_name(owner, role, i): slot(owner, role, i)
        for owner in range(processes)
        for role in ROLES
        for i in range(KEYS_PER_ROLE)
    }
    set_keys = [key_name(o, "set", i) for o in range(processes) for i in range(KEYS_PER_ROLE)]
    tag_keys = [key_name(o, "tag", i) for o in range(processes) for i in range(KEYS_PER_ROLE)]

    def reader() -> None:
        while not shared.stop.is_set():
            for name in set_keys + tag_keys:
                if shared.stop.is_set():
                    return
                index_ = name_slot[name]
                floor = shared.done[index_]
                start = time.monotonic()
                try:
                    if name.startswith("set"):
                        value = cache.get(name)
                    else:
                        value = cache.get_or_set(
                            name,
                            lambda i=index_: shared.versions[i],
                            ttl=TTL,
                            tags=[f"item:{name}"],
                        )
                    checked(name, start, floor, value)
                except Exception as exc:
                    tally.failed(exc)
                tally.ops += 1
                time.sleep(PAUSE)
            floors = {name: shared.done[name_slot[name]] for name in set_keys}
            start = time.monotonic()
            try:
                for name, value in cache.get_many(set_keys).items():
                    checked(name, start, floors[name], value)
            except Exception as exc:
                tally.failed(exc)
            tally.ops += 1

    def writer(role: str) -> None:
        turn = 0
        while not shared.stop.is_set():
            for i in range(KEYS_PER_ROLE):
                if shared.stop.is_set():
                    return
                name = key_name(index, role, i)
                index_ = slot(index, role, i)
                version = shared.versions[index_] + 1
                shared.versions[index_] = version
                try:
                    if role == "tag":
                        cache.invalidate_tags([f"item:{name}"])
                    elif turn % 2:
                        cache.delete(name)
                    else:
                        cache.set(name, version, ttl=TTL)
                except Exception as exc:
                    tally.failed(exc)
                shared.done_at[index_ * HISTORY + version % HISTORY] = time.monotonic()
                shared.done[index_] = version
                tally.ops += 1
                time.sleep(PAUSE * 4)
            turn += 1

    def recovery() -> None:
        """After the fault: how long until the service works on Redis again."""
        while not shared.stop.is_set() and shared.recovered_at.value == 0:
            time.sleep(0.02)
        while not shared.stop.is_set():
            try:
                cache.ping()
                back.append(time.monotonic() - shared.recovered_at.value)
                shared.back_at[index] = max(back[0], 1e-6)
                return
            except Exception:  # not yet: that is what this thread measures
                time.sleep(0.02)

    threads = [
        threading.Thread(target=reader),
        threading.Thread(target=reader),
        threading.Thread(target=writer, args=("set",)),
        threading.Thread(target=writer, args=("tag",)),
        threading.Thread(target=recovery),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cache.close()
    out.put(
        {
            "index": index,
            "l1": l1,
            "ops": tally.ops,
            "exceptions": tally.exceptions,
            "traceback": tally.first_traceback,
            "stale": tally.stale,
            "back": back[0] if back else None,
        }
    )
