"""@cached_query: keys, typed hits, templates, invalidate/refresh, stampede protection."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis

from perfkit.cache import (
    AsyncRedisService,
    RedisService,
    cached_query,
    get_default_cache,
    set_default_cache,
)
from tests.cache.conftest import TEST_SETTINGS

ROOT = Path(__file__).resolve().parents[2]


class Product(msgspec.Struct):
    id: int
    name: str
    price: float


@dataclasses.dataclass
class Summary:
    total: int
    label: str


def test_hit_returns_the_cached_value_and_skips_the_function(cache: RedisService) -> None:
    calls: list[tuple[int, int]] = []

    @cached_query(ttl=60, cache=cache)
    def add(a: int, b: int = 10) -> int:
        calls.append((a, b))
        return a + b

    assert add(1) == 11
    assert add(1, 10) == 11
    assert add(b=10, a=1) == 11  # defaults applied, keyword order irrelevant
    assert add(2) == 12
    assert calls == [(1, 10), (2, 10)]
    assert cache.stats().hits == 2


def test_key_is_the_same_in_every_process(cache: RedisService) -> None:
    @cached_query(cache=cache)
    def lookup(category: str, page: int = 1, filters: dict[str, str] | None = None) -> int:
        return page

    mine = lookup.cache_key("lamps", filters={"color": "red"})  # type: ignore[attr-defined]
    code = (
        "from perfkit.cache import cached_query, RedisService\n"
        "from perfkit import Settings\n"
        "cache = RedisService('redis://127.0.0.1:1/0', namespace='x', settings=Settings())\n"
        "@cached_query(cache=cache)\n"
        "def lookup(category: str, page: int = 1, filters: dict[str, str] | None = None) -> int:\n"
        "    return page\n"
        "lookup.__module__ = 'tests.cache.test_decorator'\n"
        "lookup.__wrapped__.__module__ = 'tests.cache.test_decorator'\n"
        "print(lookup.cache_key(filters={'color': 'red'}, category='lamps'))\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert mine.startswith("cq:tests.cache.test_decorator.")
    assert other.stdout.strip().split(":")[-1] == mine.split(":")[-1]


def test_hits_decode_into_the_return_annotation(cache: RedisService) -> None:
    @cached_query(cache=cache)
    def products(category: str) -> list[Product]:
        return [Product(id=1, name="lamp", price=9.5)]

    @cached_query(cache=cache)
    def summary() -> Summary:
        return Summary(total=3, label="x")

    assert products("lamps") == [Product(id=1, name="lamp", price=9.5)]
    hit = products("lamps")
    assert hit == [Product(id=1, name="lamp", price=9.5)]
    assert isinstance(hit[0], Product)
    summary()
    assert summary() == Summary(total=3, label="x")
    assert cache.stats().hits == 2


def test_unencodable_argument_names_it(cache: RedisService) -> None:
    @cached_query(cache=cache)
    def report(day: str, conn: object) -> int:
        return 1

    with pytest.raises(TypeError, match="argument 'conn' of type object"):
        report("mon", object())

    @cached_query(cache=cache, key="report:{day}")
    def keyed_report(day: str, conn: object) -> int:
        return 1

    assert keyed_report("mon", object()) == 1
    assert cache.exists("report:mon")


def test_methods_leave_self_out_of_the_key(cache: RedisService) -> None:
    class Repository:
        @cached_query(cache=cache)
        def find(self, id: int) -> int:
            return id * 2

    assert Repository().find(3) == 6
    assert Repository().find(3) == 6
    assert cache.stats().hits == 1


def test_tag_templates_and_invalidate_refresh(cache: RedisService) -> None:
    prices = {"lamps": 10.0}

    @cached_query(ttl=60, tags=["products", "category:{category}"], cache=cache)
    def price(category: str) -> float:
        return prices[category]

    assert price("lamps") == 10.0
    prices["lamps"] = 12.0
    assert price("lamps") == 10.0
    cache.invalidate_tags(["category:lamps"])
    assert price("lamps") == 12.0
    prices["lamps"] = 13.0
    assert price.refresh("lamps") == 13.0  # type: ignore[attr-defined]
    assert price("lamps") == 13.0
    price.invalidate("lamps")  # type: ignore[attr-defined]
    prices["lamps"] = 14.0
    assert price("lamps") == 14.0

    @cached_query(tags=["{missing}"], cache=cache)
    def broken(category: str) -> int:
        return 1

    with pytest.raises(ValueError, match="missing"):
        broken("x")


def test_wrong_kind_of_service_is_refused(cache: RedisService) -> None:
    with pytest.raises(TypeError, match="AsyncRedisService"):

        @cached_query(cache=cache)
        async def fetch() -> int:
            return 1


@pytest.mark.parametrize("ttl", [-1, "300", True, float("nan"), float("inf")])
def test_bad_ttl_is_refused_where_the_function_is_decorated(ttl: object) -> None:
    with pytest.raises(ValueError, match="ttl must be a number of seconds"):
        cached_query(ttl=ttl)  # type: ignore[arg-type]


def test_default_cache_is_replaceable(cache: RedisService, monkeypatch: pytest.MonkeyPatch) -> None:
    set_default_cache(cache)
    try:
        assert get_default_cache() is cache

        @cached_query(ttl=30)
        def value() -> int:
            return 5

        assert value() == 5
        assert cache.stats().sets == 1
    finally:
        set_default_cache(None)


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


def test_all_kinds_of_signatures_bind_like_python(cache: RedisService) -> None:
    @cached_query(cache=cache)
    def plain(a: int, b: int = 2, *, c: int = 3) -> list[int]:
        return [a, b, c]

    @cached_query(cache=cache)
    def variadic(a: int, /, *rest: int, **named: int) -> list[object]:
        return [a, list(rest), named]

    assert plain(1) == plain(a=1) == plain(1, 2, c=3) == [1, 2, 3]
    assert plain.cache_key(1) == plain.cache_key(1, c=3)  # type: ignore[attr-defined]
    assert plain.cache_key(1) != plain.cache_key(1, c=4)  # type: ignore[attr-defined]
    assert variadic(1, 2, 3, x=4) == [1, [2, 3], {"x": 4}]
    assert variadic(1, 2, 3, x=4) == [1, [2, 3], {"x": 4}]
    for bad_call in (
        lambda: plain(),
        lambda: plain(1, a=1),
        lambda: plain(1, 2, 3),
        lambda: plain(1, d=1),
    ):
        with pytest.raises(TypeError, match="plain"):
            bad_call()


def test_equal_but_differently_typed_arguments_get_their_own_keys(cache: RedisService) -> None:
    @cached_query(cache=cache)
    def echo(value: object) -> object:
        return value

    assert [echo(1), echo(True), echo(1.0), echo("1")] == [1, True, 1.0, "1"]
    # Second round: hits, each its own (the key memo must not mix 1 and True).
    assert [echo(1), echo(True), echo(1.0), echo("1")] == [1, True, 1.0, "1"]
    assert [type(v) for v in (echo(1), echo(True), echo(1.0))] == [int, bool, float]
    assert cache.stats().hits == 7


def test_unresolvable_return_annotation_is_a_clear_error(cache: RedisService) -> None:
    class Local(msgspec.Struct):
        x: int

    @cached_query(cache=cache)
    def make() -> Local:
        return Local(x=1)

    with pytest.raises(TypeError, match="cannot resolve the return annotation"):
        make()


async def test_a_key_or_tag_that_cannot_name_an_entry_is_refused_on_every_call(
    redis_url: str, namespace: str
) -> None:
    # With L1 on, a hit never reaches the service's own checks: the decorator makes them.
    service = AsyncRedisService(redis_url, namespace=namespace, settings=TEST_SETTINGS, l1=True)
    await asyncio.to_thread(service.wait_l1_ready)

    @cached_query(cache=service, key="{name}", tags=["t:{tag}"])
    async def lookup(name: str, tag: str) -> str:
        return name

    assert await lookup("fine", "x") == "fine"
    assert await lookup("fine", "x") == "fine"  # an L1 hit
    for _ in range(2):  # the first call and a memoized one alike
        with pytest.raises(ValueError, match="reserved"):
            await lookup("__perfkit__:tag:x", "x")
        with pytest.raises(ValueError, match="control characters"):
            await lookup("fine", "\n")
        with pytest.raises(TypeError, match="non-empty string"):
            await lookup("", "x")
    await service.clear()
    await service.close()
