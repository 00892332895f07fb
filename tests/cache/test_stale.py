"""Stale-while-revalidate, stale-if-error and early refresh (issue 26): an expired value is
served at once while one refresh runs, fleet-wide; never after an invalidation.

Each service-level test runs on the sync and the async service (``kind``), on the standalone
server and on the session's Redis Cluster; the cross-process tests run real processes
(``_stale_worker.py``) against the shared server."""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from perfkit.cache import AsyncRedisService, RedisService, cached_query
from perfkit.metrics import PerformanceMonitor
from tests._servers import PrivateRedis, PrivateSentinel
from tests.cache.conftest import TEST_SETTINGS
from tests.cache.test_sentinel import replicated  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
Service = RedisService | AsyncRedisService
TTL = 0.3  # seconds an entry is fresh in these tests


async def run(result: Any) -> Any:
    """A sync service's result, or an async one's awaited."""
    return await result if inspect.isawaitable(result) else result


async def until(condition: Callable[[], Any], timeout: float = 15.0) -> None:  # noqa: ASYNC109
    """Poll ``condition`` (sync or async) without blocking the loop, so that the async
    service's background refreshes run meanwhile."""
    deadline = time.monotonic() + timeout
    while not await run(condition()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def expire(service: Service, key: str) -> None:
    """Wait until the entry at ``key`` is past its freshness (plain readers miss it)."""
    await until(lambda: _is(service.get(key, "expired"), "expired"), timeout=10)


async def _is(result: Any, expected: object) -> bool:
    return bool(await run(result) == expected)


class Loader:
    """A loader that counts its calls, takes ``sleep`` seconds and returns ``value`` (or
    raises ``error``); a coroutine function for the async service."""

    def __init__(self, kind: str, value: object, sleep: float = 0.0) -> None:
        self.kind, self.value, self.sleep = kind, value, sleep
        self.calls = 0
        self.error: Exception | None = None

    def _result(self) -> object:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.value

    def __call__(self) -> Any:
        if self.kind == "async":

            async def load() -> object:
                await asyncio.sleep(self.sleep)
                return self._result()

            return load()
        time.sleep(self.sleep)
        return self._result()


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def service(kind: str, cache_url: str, namespace: str) -> AsyncIterator[Service]:
    cls = RedisService if kind == "sync" else AsyncRedisService
    svc = cls(cache_url, namespace=namespace, settings=TEST_SETTINGS)
    yield svc
    await run(svc.clear())
    await run(svc.close())


async def test_an_expired_value_is_served_at_once_while_one_refresh_runs(
    service: Service, kind: str
) -> None:
    first = Loader(kind, "v1")
    options: dict[str, Any] = {"ttl": TTL, "tags": ["report"], "stale_ttl": 30}
    assert await run(service.get_or_set("r", first, **options)) == "v1"
    await expire(service, "r")
    slow = Loader(kind, "v2", sleep=1.5)
    for _ in range(5):
        started = time.perf_counter()
        assert await run(service.get_or_set("r", slow, **options)) == "v1"
        # At once: a fraction of the loader's 1.5 s.
        assert time.perf_counter() - started < 0.75
    await until(lambda: _is(service.get_or_set("r", slow, **options), "v2"))
    stats = await run(service.stats())
    assert (first.calls, slow.calls) == (1, 1)
    assert stats.stale_hits >= 5 and stats.background_refreshes == 1
    assert stats.stale_if_error_serves == 0
    # A reader without a stale window sees the refreshed value, fresh.
    assert await run(service.get("r")) == "v2"


async def test_past_the_window_the_loader_runs_in_the_foreground(
    service: Service, kind: str
) -> None:
    options: dict[str, Any] = {"ttl": TTL, "stale_ttl": 0.3}
    await run(service.get_or_set("r", Loader(kind, "v1"), **options))
    await asyncio.sleep(TTL + 0.3 + 0.1)
    later = Loader(kind, "v2")
    assert await run(service.get_or_set("r", later, **options)) == "v2"
    assert later.calls == 1
    assert (await run(service.stats())).stale_hits == 0


async def test_stale_if_error_serves_the_old_value_inside_the_window_only(
    service: Service, kind: str
) -> None:
    options: dict[str, Any] = {"ttl": TTL, "stale_ttl": 3.0, "stale_if_error": True}
    key = "report-for-customer-4242"
    await run(service.get_or_set(key, Loader(kind, "old"), **options))
    await expire(service, key)
    failing = Loader(kind, "new")
    failing.error = RuntimeError("database unavailable")
    with capture_logs() as logs:
        assert await run(service.get_or_set(key, failing, **options)) == "old"
        await until(lambda: failing.calls >= 1 and not service._refreshes)
        # The refresh failed: the old value is still served, counted.
        assert await run(service.get_or_set(key, failing, **options)) == "old"
    stats = await run(service.stats())
    assert stats.stale_if_error_serves >= 1 and stats.background_refreshes >= 1
    failures = [entry for entry in logs if entry["event"] == "cache.refresh_failed"]
    assert failures and failures[0]["error"] == "RuntimeError: database unavailable"
    assert failures[0]["stale_kept"] is True
    # No parameter value (the key holds the call's arguments) in the log.
    assert "4242" not in str(failures)
    # Outside the window the error propagates.
    await until(lambda: not service._refreshes)
    await asyncio.sleep(3.2)
    with pytest.raises(RuntimeError, match="database unavailable"):
        await run(service.get_or_set(key, failing, **options))


async def test_without_stale_if_error_a_failed_refresh_ends_the_window(
    service: Service, kind: str
) -> None:
    options: dict[str, Any] = {"ttl": TTL, "stale_ttl": 30}
    await run(service.get_or_set("k", Loader(kind, "old"), **options))
    await expire(service, "k")
    failing = Loader(kind, "new")
    failing.error = RuntimeError("database unavailable")
    with capture_logs():
        assert await run(service.get_or_set("k", failing, **options)) == "old"
        await until(lambda: failing.calls >= 1 and not service._refreshes)
    with pytest.raises(RuntimeError, match="database unavailable"):
        await run(service.get_or_set("k", failing, **options))


@pytest.mark.parametrize("l1", [False, True], ids=["l1-off", "l1-on"])
@pytest.mark.parametrize("operation", ["invalidate_tags", "delete", "invalidate_pattern"])
async def test_never_stale_after_an_invalidation(
    kind: str, cache_url: str, namespace: str, l1: bool, operation: str
) -> None:
    """A reader (with L1 or not) holds an expired entry in its stale window; another
    service invalidates it: the reader never gets the old value again."""
    cls = RedisService if kind == "sync" else AsyncRedisService
    reader = cls(cache_url, namespace=namespace, settings=TEST_SETTINGS, l1=l1)
    writer = cls(cache_url, namespace=namespace, settings=TEST_SETTINGS)
    if l1:
        assert reader.wait_l1_ready(10)
    invalidate = {
        "invalidate_tags": lambda: writer.invalidate_tags(["product:1"]),
        "delete": lambda: writer.delete("product:1"),
        "invalidate_pattern": lambda: writer.invalidate_pattern("product:*"),
    }[operation]
    options: dict[str, Any] = {"ttl": TTL, "tags": ["product:1"], "stale_ttl": 30}
    try:
        # Fresh, then invalidated: gone within the push bound (L1), at once otherwise.
        assert await run(reader.get_or_set("product:1", Loader(kind, "v1"), **options)) == "v1"
        assert await run(reader.get_or_set("product:1", Loader(kind, "x"), **options)) == "v1"
        await run(invalidate())
        await until(
            lambda: _is(reader.get_or_set("product:1", Loader(kind, "v2"), **options), "v2"),
            timeout=1.0,
        )
        # Expired and inside the window (served stale, below), then invalidated: never again.
        await expire(reader, "product:1")
        await run(invalidate())
        fresh = Loader(kind, "v3")
        assert await run(reader.get_or_set("product:1", fresh, **options)) == "v3"
        assert fresh.calls == 1
        assert (await run(reader.stats())).stale_hits == 0
    finally:
        await run(writer.clear())
        await run(reader.close())
        await run(writer.close())


async def test_early_refresh_replaces_a_value_before_it_expires(
    service: Service, kind: str
) -> None:
    # beta so large that any call before expiry refreshes (XFetch's gap: loader time x beta).
    options: dict[str, Any] = {"ttl": 5.0, "early_refresh": 1e6}
    await run(service.get_or_set("e", Loader(kind, "v1", sleep=0.02), **options))
    second = Loader(kind, "v2", sleep=0.02)
    assert await run(service.get_or_set("e", second, **options)) == "v1"
    await until(lambda: _is(service.get("e"), "v2"), timeout=4.0)  # before the 5 s expiry
    assert (await run(service.stats())).background_refreshes >= 1
    # Off by default: the same calls without it never refresh before expiry.
    plain = Loader(kind, "v3")
    assert await run(service.get_or_set("e", plain, ttl=5.0)) == "v2"
    assert plain.calls == 0


async def test_stale_options_are_checked_where_given(service: Service, kind: str) -> None:
    with pytest.raises(ValueError, match="stale_if_error=True needs stale_ttl"):
        cached_query(ttl=5, stale_if_error=True)
    with pytest.raises(ValueError, match="stale_ttl must be a number of seconds > 0"):
        cached_query(ttl=5, stale_ttl=-1)
    with pytest.raises(ValueError, match="early_refresh must be a number of seconds > 0"):
        await run(service.get_or_set("k", Loader(kind, 1), early_refresh=0))


async def test_the_stale_counters_reach_the_metrics(service: Service, kind: str) -> None:
    options: dict[str, Any] = {"ttl": TTL, "stale_ttl": 30}
    await run(service.get_or_set("m", Loader(kind, 1), **options))
    await expire(service, "m")
    assert await run(service.get_or_set("m", Loader(kind, 2), **options)) == 1
    await until(lambda: _is(service.get("m"), 2))
    stats = await run(service.stats())

    class Source:
        def stats(self) -> object:
            return stats

    text = PerformanceMonitor(cache=Source()).exposition()
    assert "perfkit_cache_stale_hits_total 1" in text
    assert "perfkit_cache_background_refreshes_total 1" in text
    assert "perfkit_cache_stale_if_error_serves_total 0" in text


# -- when Redis is down ------------------------------------------------------------------------


async def test_in_fallback_the_window_applies_to_what_memory_holds(
    kind: str, private_redis: PrivateRedis
) -> None:
    cls = RedisService if kind == "sync" else AsyncRedisService
    service = cls(private_redis.url, namespace="app", settings=TEST_SETTINGS)
    options: dict[str, Any] = {"ttl": TTL, "tags": ["t"], "stale_ttl": 30}
    try:
        private_redis.kill()
        assert await run(service.get_or_set("k", Loader(kind, "v1"), **options)) == "v1"
        assert (await run(service.stats())).fallback_active
        await expire(service, "k")
        slow = Loader(kind, "v2", sleep=1.0)
        started = time.perf_counter()
        assert await run(service.get_or_set("k", slow, **options)) == "v1"
        assert time.perf_counter() - started < 0.5
        await until(lambda: _is(service.get_or_set("k", slow, **options), "v2"))
        assert slow.calls == 1
        # Invalidation is not expiry, in memory too.
        await expire(service, "k")
        await run(service.invalidate_tags(["t"]))
        assert await run(service.get_or_set("k", Loader(kind, "v3"), **options)) == "v3"
        await expire(service, "k")
        await run(service.delete("k"))
        assert await run(service.get_or_set("k", Loader(kind, "v4"), **options)) == "v4"
    finally:
        await run(service.close())


@pytest.mark.slow
async def test_behind_sentinel_with_l1(
    kind: str,
    replicated: tuple[PrivateRedis, PrivateRedis, PrivateSentinel],  # noqa: F811
) -> None:
    cls = RedisService if kind == "sync" else AsyncRedisService
    service = cls(replicated[2].url, namespace="app", settings=TEST_SETTINGS, l1=True)
    options: dict[str, Any] = {"ttl": TTL, "tags": ["t"], "stale_ttl": 30}
    try:
        assert service.wait_l1_ready(10)
        assert await run(service.get_or_set("k", Loader(kind, "v1"), **options)) == "v1"
        await expire(service, "k")
        slow = Loader(kind, "v2", sleep=0.5)
        assert await run(service.get_or_set("k", slow, **options)) == "v1"
        await until(lambda: _is(service.get_or_set("k", slow, **options), "v2"))
        assert slow.calls == 1
        await expire(service, "k")
        await run(service.invalidate_tags(["t"]))
        assert await run(service.get_or_set("k", Loader(kind, "v3"), **options)) == "v3"
    finally:
        await run(service.close())


# -- across processes ----------------------------------------------------------------------------


class Worker:
    """A ``_stale_worker`` process."""

    def __init__(self, url: str, namespace: str, kind: str, l1: bool, sleep: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.cache._stale_worker", url, namespace, kind,
             "1" if l1 else "0", "2.0", "60", str(sleep)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.read() == "ready"

    def read(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        return line if line == "ready" else json.loads(line)

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def call(self) -> Any:
        self.send("call")
        return self.read()[0]

    def close(self) -> None:
        try:
            self.send("quit")
            self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.close()


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("l1", [False, True], ids=["l1-off", "l1-on"])
def test_four_processes_get_the_old_value_at_once_and_one_refresh_runs(
    kind: str,
    l1: bool,
    redis_url: str,
    namespace: str,
    redis_client: redis.Redis,
    workers: list[Worker],
) -> None:
    redis_client.set(f"{namespace}:source", "v1")
    workers += [Worker(redis_url, namespace, kind, l1, sleep=3.0) for _ in range(4)]
    assert workers[0].call() == "v1"
    assert [worker.call() for worker in workers] == ["v1"] * 4  # (L1 copies, with l1)
    redis_client.set(f"{namespace}:source", "v2")
    redis_client.set(f"{namespace}:loader-calls", 0)
    time.sleep(2.1)  # past the 2 s ttl: every process's copy is expired
    start_at = time.time() + 0.5
    for worker in workers:
        worker.send(f"burst 25 {start_at}")
    bursts = [worker.read() for worker in workers]
    # Every caller got the old value at once: well under the loader's 3 s.
    assert {value for burst in bursts for value, _ in burst} == {"v1"}
    assert max(seconds for burst in bursts for _, seconds in burst) < 1.5
    # The refreshed value replaces the old one in every process (L1 included)...
    wait_for(lambda: all(worker.call() == "v2" for worker in workers))
    assert all(worker.call() == "v2" for worker in workers)
    # ...and the loader ran once, fleet-wide.
    assert redis_client.get(f"{namespace}:loader-calls") == b"1"


@pytest.mark.slow
@pytest.mark.parametrize("l1", [False, True], ids=["l1-off", "l1-on"])
def test_no_process_gets_a_stale_value_after_an_invalidation(
    kind: str,
    l1: bool,
    redis_url: str,
    namespace: str,
    redis_client: redis.Redis,
    workers: list[Worker],
) -> None:
    writer = RedisService(redis_url, namespace=namespace, settings=TEST_SETTINGS)
    workers += [Worker(redis_url, namespace, kind, l1, sleep=0.0) for _ in range(2)]
    for operation in ("invalidate_tags", "delete", "invalidate_pattern"):
        redis_client.set(f"{namespace}:source", f"{operation}-old")
        writer.delete("report:d")
        # (With L1, the previous value leaves it within the push bound.)
        old = [f"{operation}-old"] * 2
        wait_for(lambda old=old: [w.call() for w in workers] == old, timeout=5)
        time.sleep(2.1)  # expired: inside the 60 s stale window
        redis_client.set(f"{namespace}:source", f"{operation}-new")
        if operation == "invalidate_tags":
            writer.invalidate_tags(["report"])
        elif operation == "delete":
            writer.delete("report:d")
        else:
            writer.invalidate_pattern("report:*")
        # Right after it returns: no process serves the old value, stale or not.
        assert [worker.call() for worker in workers] == [f"{operation}-new"] * 2
    writer.close()
