"""The fault matrix's workload: one process of readers, writers and invalidators on a cache
service (``RedisService`` in threads, or ``AsyncRedisService`` in tasks), checking every value
it reads against the "database" (versions in shared memory).

Each key has one writer, so versions only grow. A writer bumps a key's version, then sets,
deletes or invalidates it in the cache, then publishes the version as *done* with the time
its call returned, and whether its service was in fallback then (the change pending, to be
applied when that process is back on Redis). A reader notes the done version before its
call; a value older than it is a stale read, whose age is how long before the read the first
change past that value returned (from a ring of the last ``HISTORY`` versions' times).
Each process also records its own outages: when its service went into fallback and when it
was back on Redis -- the injected fault's, and any other (on a loaded machine a command can
time out, which is an outage of that process like any other). Processes are spawned, so the
service under test runs in each process as it would in an app.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from typing import Any

KEYS_PER_ROLE = 12
ROLES = ("set", "tag")  # "set": written with set/delete, read with get/get_many;
# "tag": read with get_or_set under a tag, changed by invalidate_tags.
PAUSE = 0.004  # between one reader's calls: enough load, CPU left for the rest
TTL = 5
FALLBACK_TTL = 1.0  # CACHE_FALLBACK_TTL: how long a process serves its own memory entries
HISTORY = 256
WATCH_EVERY = 0.01  # how often each process notes whether its service is in fallback
SETTLE = 6.0  # once stopped, how long a process waits for its service to be back on Redis


@dataclass
class Shared:
    """State shared by the processes of one run (multiprocessing objects)."""

    versions: SynchronizedArray[int]  # the database: the current version of each key
    done: SynchronizedArray[int]  # the version whose cache call returned
    done_at: SynchronizedArray[float]  # per slot and version % HISTORY: when it returned
    done_pending: SynchronizedArray[int]  # same index: 1 if its service was in fallback then
    recovered_at: Synchronized[float]  # when the fault ended (0 until then)
    back_at: SynchronizedArray[float]  # per process: seconds from then until back on Redis
    stop: Any  # an Event


def slots(processes: int) -> int:
    return processes * len(ROLES) * KEYS_PER_ROLE


def slot(owner: int, role: str, i: int) -> int:
    return (owner * len(ROLES) + ROLES.index(role)) * KEYS_PER_ROLE + i


def owner_of(slot_index: int) -> int:
    return slot_index // (len(ROLES) * KEYS_PER_ROLE)


def key_name(owner: int, role: str, i: int) -> str:
    return f"{role}:{owner}:{i}"


@dataclass
class Workload:
    """One process's view: its keys, the checks, and the tally of what happened."""

    index: int
    processes: int
    shared: Shared
    ops: int = 0
    exceptions: dict[str, int] = field(default_factory=dict)
    first_traceback: str = ""
    # (read start, age, index of the writer process, whether the change was pending in it,
    # whether the reader's service was in fallback at the read's start or end).
    stale: list[tuple[float, float, int, bool, bool]] = field(default_factory=list)
    back: float | None = None
    # This process's outages as [start, end] (end None while it lasts): the first poll (or
    # change) that saw its service in fallback, the first poll that saw it back on Redis.
    outages: list[list[float | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_fallback: Callable[[], bool] = lambda: False  # the service's fallback_active

    def __post_init__(self) -> None:
        every = [
            (o, r, i) for o in range(self.processes) for r in ROLES for i in range(KEYS_PER_ROLE)
        ]
        self.slot_of = {key_name(o, r, i): slot(o, r, i) for o, r, i in every}
        self.set_keys = [key_name(o, r, i) for o, r, i in every if r == "set"]
        self.tag_keys = [key_name(o, r, i) for o, r, i in every if r == "tag"]

    def floor(self, name: str) -> int:
        return int(self.shared.done[self.slot_of[name]])

    def load(self, name: str) -> Callable[[], int]:
        """The loader of a tag key: its current version in the database."""
        index = self.slot_of[name]
        return lambda: int(self.shared.versions[index])

    def check(self, name: str, start: float, floor: int, value: Any, memory: bool) -> None:
        """``memory``: the service was in fallback when the read began (it may have been
        served from this process's memory)."""
        self.ops += 1
        if value is None or value >= floor:
            return
        memory = memory or self.in_fallback()
        index = self.slot_of[name]
        ring = index * HISTORY + (value + 1) % HISTORY
        age = start - self.shared.done_at[ring]
        pending = bool(self.shared.done_pending[ring])
        with self.lock:
            self.stale.append((start, age, owner_of(index), pending, memory))

    def failed(self, exc: BaseException) -> None:
        with self.lock:
            name = type(exc).__name__
            self.exceptions[name] = self.exceptions.get(name, 0) + 1
            if not self.first_traceback:
                self.first_traceback = traceback.format_exc()

    def bump(self, role: str, i: int) -> tuple[str, int]:
        """The next change of one of this process's keys: (name, version), in the database."""
        index = slot(self.index, role, i)
        version = self.shared.versions[index] + 1
        self.shared.versions[index] = version
        return key_name(self.index, role, i), version

    def done(self, role: str, i: int, version: int, pending: bool) -> None:
        """``pending``: the service was in fallback when the call returned."""
        index = slot(self.index, role, i)
        if pending:
            self.watch(True)
        ring = index * HISTORY + version % HISTORY
        self.shared.done_pending[ring] = int(pending)
        self.shared.done_at[ring] = time.monotonic()
        self.shared.done[index] = version
        self.ops += 1

    def watch(self, seen: bool = False) -> None:
        """Note whether the service is in fallback now (the outages' starts and ends);
        ``seen``: a caller saw it in fallback just now."""
        with self.lock:  # looked at under the lock: a later look is never noted first
            now, in_fallback = time.monotonic(), seen or self.in_fallback()
            ongoing = bool(self.outages) and self.outages[-1][1] is None
            if in_fallback and not ongoing:
                self.outages.append([now, None])
            elif not in_fallback and ongoing:
                self.outages[-1][1] = now

    def recovered(self) -> float:
        return float(self.shared.recovered_at.value)

    def came_back(self) -> None:
        self.back = time.monotonic() - self.recovered()
        self.shared.back_at[self.index] = max(self.back, 1e-6)

    def result(self, mode: str) -> dict[str, Any]:
        return {
            "index": self.index,
            "mode": mode,
            "ops": self.ops,
            "exceptions": self.exceptions,
            "traceback": self.first_traceback,
            "stale": self.stale,
            "back": self.back,
            "outages": self.outages,
        }


def tag_of(name: str) -> list[str]:
    return [f"item:{name}"]


def run(
    index: int,
    processes: int,
    url: str,
    namespace: str,
    mode: str,
    shared: Shared,
    out: Any,
) -> None:
    """One process of the workload (``mode``: "sync", "sync+l1", "async", "async+l1"); puts
    its tally (a dict) on ``out`` once ``stop`` is set."""
    import structlog

    from perfkit import Settings

    # The services log every state change; the matrix reads the tallies instead.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    settings = Settings(
        redis_socket_timeout=0.3,
        redis_connect_timeout=0.3,
        redis_retry_max_delay=0.5,
        cache_lock_wait=1.0,
        cache_fallback_ttl=FALLBACK_TTL,
    )
    work = Workload(index, processes, shared)
    options = {"namespace": namespace, "settings": settings, "l1": mode.endswith("+l1")}
    if mode.startswith("async"):
        asyncio.run(_run_async(work, url, options))
    else:
        _run_sync(work, url, options)
    out.put(work.result(mode))


def _run_sync(work: Workload, url: str, options: dict[str, Any]) -> None:
    from perfkit.cache import RedisService

    cache = RedisService(url, **options)
    work.in_fallback = lambda: cache.fallback_active
    cache.wait_l1_ready(10)
    stop = work.shared.stop

    def reader() -> None:
        while not stop.is_set():
            for name in work.set_keys + work.tag_keys:
                floor, start, memory = work.floor(name), time.monotonic(), cache.fallback_active
                try:
                    if name.startswith("set"):
                        value = cache.get(name)
                    else:
                        value = cache.get_or_set(name, work.load(name), ttl=TTL, tags=tag_of(name))
                    work.check(name, start, floor, value, memory)
                except Exception as exc:
                    work.failed(exc)
                time.sleep(PAUSE)
            floors, start = {n: work.floor(n) for n in work.set_keys}, time.monotonic()
            memory = cache.fallback_active
            try:
                for name, value in cache.get_many(work.set_keys).items():
                    work.check(name, start, floors[name], value, memory)
            except Exception as exc:
                work.failed(exc)

    def writer(role: str) -> None:
        turn = 0
        while not stop.is_set():
            for i in range(KEYS_PER_ROLE):
                name, version = work.bump(role, i)
                try:
                    if role == "tag":
                        cache.invalidate_tags(tag_of(name))
                    elif turn % 2:
                        cache.delete(name)
                    else:
                        cache.set(name, version, ttl=TTL)
                except Exception as exc:
                    work.failed(exc)
                work.done(role, i, version, cache.fallback_active)
                time.sleep(PAUSE * 4)
            turn += 1

    def recovery() -> None:
        """After the fault: how long until the service works on Redis again."""
        while not stop.is_set():
            if work.recovered():
                try:
                    cache.ping()
                    work.came_back()
                    return
                except Exception:  # not yet: that is what this measures
                    pass
            time.sleep(0.02)

    def outages() -> None:
        """The service's outages, until it is back on Redis after the workload stopped."""
        while not stop.is_set():
            work.watch()
            time.sleep(WATCH_EVERY)
        deadline = time.monotonic() + SETTLE
        while cache.fallback_active and time.monotonic() < deadline:
            time.sleep(WATCH_EVERY)
        work.watch()

    threads = [threading.Thread(target=reader), threading.Thread(target=reader)]
    threads += [threading.Thread(target=writer, args=(role,)) for role in ROLES]
    threads += [threading.Thread(target=recovery), threading.Thread(target=outages)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cache.close()


async def _run_async(work: Workload, url: str, options: dict[str, Any]) -> None:
    from perfkit.cache import AsyncRedisService

    cache = AsyncRedisService(url, **options)
    work.in_fallback = lambda: cache.fallback_active
    await asyncio.to_thread(cache.wait_l1_ready, 10)
    stop = work.shared.stop

    async def reader() -> None:
        while not stop.is_set():
            for name in work.set_keys + work.tag_keys:
                floor, start, memory = work.floor(name), time.monotonic(), cache.fallback_active
                try:
                    read: Awaitable[Any] = (
                        cache.get(name)
                        if name.startswith("set")
                        else cache.get_or_set(name, work.load(name), ttl=TTL, tags=tag_of(name))
                    )
                    work.check(name, start, floor, await read, memory)
                except Exception as exc:
                    work.failed(exc)
                await asyncio.sleep(PAUSE)
            floors, start = {n: work.floor(n) for n in work.set_keys}, time.monotonic()
            memory = cache.fallback_active
            try:
                for name, value in (await cache.get_many(work.set_keys)).items():
                    work.check(name, start, floors[name], value, memory)
            except Exception as exc:
                work.failed(exc)

    async def writer(role: str) -> None:
        turn = 0
        while not stop.is_set():
            for i in range(KEYS_PER_ROLE):
                name, version = work.bump(role, i)
                try:
                    if role == "tag":
                        await cache.invalidate_tags(tag_of(name))
                    elif turn % 2:
                        await cache.delete(name)
                    else:
                        await cache.set(name, version, ttl=TTL)
                except Exception as exc:
                    work.failed(exc)
                work.done(role, i, version, cache.fallback_active)
                await asyncio.sleep(PAUSE * 4)
            turn += 1

    async def recovery() -> None:
        while not stop.is_set():
            if work.recovered():
                try:
                    await cache.ping()
                    work.came_back()
                    return
                except Exception:  # not yet: that is what this measures
                    pass
            await asyncio.sleep(0.02)

    async def outages() -> None:
        while not stop.is_set():
            work.watch()
            await asyncio.sleep(WATCH_EVERY)
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            if not cache.fallback_active:
                break
            await asyncio.sleep(WATCH_EVERY)
        work.watch()

    await asyncio.gather(
        reader(), reader(), *(writer(role) for role in ROLES), recovery(), outages()
    )
    await cache.close()
