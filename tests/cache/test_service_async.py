"""AsyncRedisService against a real Redis: values, TTLs, batches, namespaces, bad input.

Written once, for both services: ``test_service.py`` is generated from
``test_service_async.py`` (tools/async_to_sync.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import msgspec
import pytest
import redis
import redis.asyncio

from perfkit import ConfigError, Settings
from perfkit.cache import AsyncRedisService
from tests.cache.conftest import TEST_SETTINGS

# Each test twice: reads sent on the pool directly, and through execute_command.
pytestmark = pytest.mark.usefixtures("read_lane")


class Product(msgspec.Struct):
    id: int
    name: str
    price: float


@dataclasses.dataclass
class Point:
    x: int
    y: int


async def test_reads_take_the_lane_asked_for(
    acache: AsyncRedisService, read_lane: str, server_kind: str
) -> None:
    # read_lane is set before the cache fixture makes its service; a cluster has one lane.
    direct = read_lane == "direct" and server_kind == "standalone"
    assert (acache._pool is not None) == direct
    await acache.set("k", "v")
    assert await acache.get("k") == "v"


async def test_set_get_delete_exists(acache: AsyncRedisService) -> None:
    await acache.set("a", {"x": 1, "y": [1, 2]})
    assert await acache.get("a") == {"x": 1, "y": [1, 2]}
    assert await acache.exists("a")
    assert await acache.delete("a", "never-set") == 1
    assert not await acache.exists("a")
    assert await acache.get("a") is None
    assert await acache.get("a", "fallback") == "fallback"


async def test_none_is_a_cached_value(acache: AsyncRedisService) -> None:
    await acache.set("nothing", None)
    assert await acache.exists("nothing")
    assert await acache.get("nothing", "default") is None
    calls = []
    assert await acache.get_or_set("nothing", lambda: calls.append(1)) is None
    assert calls == []


async def test_loader_runs_once_and_is_counted(acache: AsyncRedisService) -> None:
    calls: list[int] = []

    async def loader() -> int:
        calls.append(1)
        return 7

    assert await acache.get_or_set("g", loader) == 7
    assert await acache.get_or_set("g", loader) == 7
    assert calls == [1]
    metrics = await acache.stats()
    assert (metrics.hits, metrics.misses, metrics.sets) == (1, 1, 1)


async def test_values_round_trip(acache: AsyncRedisService) -> None:
    moment = dt.datetime(2026, 11, 26, 12, 30, tzinfo=dt.UTC)
    await acache.set("many", ["s", 1, 2.5, True, None, {"k": "v"}])
    await acache.set("when", moment)
    await acache.set("struct", Product(id=1, name="lamp", price=9.5))
    await acache.set("dataclass", Point(1, 2))
    assert await acache.get("many") == ["s", 1, 2.5, True, None, {"k": "v"}]
    assert await acache.get("when") == moment
    # Untyped reads give plain containers; cached_query decodes into the annotated type.
    assert await acache.get("struct") == {"id": 1, "name": "lamp", "price": 9.5}
    assert await acache.get("dataclass") == {"x": 1, "y": 2}


async def test_keys_live_in_the_namespace(
    acache: AsyncRedisService, redis_client: redis.Redis, namespace: str
) -> None:
    await acache.set("k", 1)
    assert redis_client.exists(f"{namespace}:k") == 1


async def test_keys_are_checked_however_often_good_ones_were_read(
    acache: AsyncRedisService, redis_client: redis.Redis, namespace: str
) -> None:
    # The service keeps the namespaced form of recent keys (bounded): reading many keys,
    # long ones and str subclasses changes neither which key is written nor what is refused.
    class Key(str):
        pass

    await acache.set_many({f"k{i}": i for i in range(5000)})
    await acache.set("x" * 300, "long")
    await acache.set(Key("sub"), "subclass")
    for _ in range(2):
        assert await acache.get_many([f"k{i}" for i in range(5000)]) == {
            f"k{i}": i for i in range(5000)
        }
        assert await acache.get("x" * 300) == "long"
        assert await acache.get(Key("sub")) == await acache.get("sub") == "subclass"
        assert len(acache._fulls) <= 4096
        for bad, error in [("", TypeError), (None, TypeError), ("__perfkit__:x", ValueError)]:
            with pytest.raises(error):
                await acache.get(bad)  # type: ignore[arg-type]
    assert redis_client.get(f"{namespace}:{'x' * 300}") is not None
    assert redis_client.exists(f"{namespace}:sub", f"{namespace}:k4999") == 2


@pytest.mark.parametrize("foreign", [b"", b"plain text", b"\x01no-terminator"])
async def test_value_not_written_by_perfkit_reads_as_a_miss(
    acache: AsyncRedisService, redis_client: redis.Redis, namespace: str, foreign: bytes
) -> None:
    redis_client.set(f"{namespace}:k", foreign)
    assert await acache.get("k", "default") == "default"
    assert await acache.get_or_set("k", lambda: "loaded", tags=["t"]) == "loaded"


async def test_unencodable_value_raises_and_writes_nothing(
    acache: AsyncRedisService, redis_client: redis.Redis, namespace: str
) -> None:
    with pytest.raises(TypeError, match="type object for key 'bad'"):
        await acache.set("bad", object())
    with pytest.raises(TypeError, match="dict for key 'bad'") as refused:
        await acache.set_many({"good": 1, "bad": {"nested": 1j}})
    assert "complex" in str(refused.value)
    assert redis_client.exists(f"{namespace}:good", f"{namespace}:bad") == 0


async def test_default_ttl_explicit_ttl_and_no_expiry(
    acache: AsyncRedisService, redis_client: redis.Redis, namespace: str
) -> None:
    await acache.set("default", 1)
    await acache.set("short", 1, ttl=1)
    await acache.set("forever", 1, ttl=0)
    assert 299_000 < redis_client.pttl(f"{namespace}:default") <= 300_000
    assert 0 < redis_client.pttl(f"{namespace}:short") <= 1000
    assert redis_client.pttl(f"{namespace}:forever") == -1
    # The TTL running out is what this tests (server time: load cannot delay it).
    await asyncio.sleep(1.1)
    assert not await acache.exists("short")
    assert await acache.exists("forever")


# Standalone only: counts connections of a single server's pool.
@pytest.mark.standalone_only
async def test_batch_operations_are_one_round_trip(acache: AsyncRedisService) -> None:
    sent: list[object] = []
    original = acache.client.connection_pool.get_connection

    def counting(*args: object, **kwargs: object) -> object:
        sent.append(args)
        return original(*args, **kwargs)

    await acache.set_many({f"k{i}": i for i in range(50)}, tags=["t"])
    await acache.set_many({f"u{i}": i for i in range(50)})
    acache.client.connection_pool.get_connection = counting  # type: ignore[method-assign]
    try:
        assert await acache.get_many([f"u{i}" for i in range(50)] + ["missing"]) == {
            f"u{i}": i for i in range(50)
        }
        assert len(sent) == 1
        sent.clear()
        await acache.set_many({f"v{i}": i for i in range(50)})
        assert len(sent) == 1
    finally:
        acache.client.connection_pool.get_connection = original  # type: ignore[method-assign]
    assert await acache.get_many([f"k{i}" for i in range(50)]) == {f"k{i}": i for i in range(50)}


async def test_pattern_invalidation_stays_in_the_namespace(
    acache: AsyncRedisService, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    other = AsyncRedisService(redis_url, namespace=f"{namespace}other", settings=TEST_SETTINGS)
    try:
        await acache.set_many({"product:1": 1, "product:2": 2, "user:1": 3})
        await other.set("product:1", "theirs")
        redis_client.set(f"{namespace}-outside:product:1", b"raw")
        assert await acache.invalidate_pattern("product:*") == 2
        assert await acache.get_many(["product:1", "product:2", "user:1"]) == {"user:1": 3}
        assert await other.get("product:1") == "theirs"
        assert redis_client.get(f"{namespace}-outside:product:1") == b"raw"
        assert await acache.invalidate_pattern("*") == 1
        assert await other.get("product:1") == "theirs"
    finally:
        await other.invalidate_pattern("*")
        await other.close()
        redis_client.delete(f"{namespace}-outside:product:1")


async def test_pattern_invalidation_in_batches(acache: AsyncRedisService) -> None:
    await acache.set_many({f"bulk:{i}": i for i in range(2_500)})
    assert await acache.invalidate_pattern("bulk:*") == 2_500
    assert await acache.get_many([f"bulk:{i}" for i in range(0, 2_500, 100)]) == {}


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.set("", 1), TypeError),
        (lambda c: c.get(5), TypeError),
        (lambda c: c.set("__perfkit__:x", 1), ValueError),
        (lambda c: c.set("k", 1, ttl=-1), ValueError),
        (lambda c: c.set("k", 1, ttl="10"), ValueError),
        (lambda c: c.set("k", 1, tags="products"), TypeError),
        (lambda c: c.set("k", 1, tags=["bad\ntag"]), ValueError),
        (lambda c: c.get_many("abc"), TypeError),
        (lambda c: c.invalidate_pattern(""), ValueError),
    ],
)
async def test_bad_arguments_are_refused_clearly(
    acache: AsyncRedisService, call: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await call(acache)  # type: ignore[operator]
    assert await acache.get_many(["k"]) == {}


async def test_bad_namespace_and_decoding_client_are_refused(redis_url: str) -> None:
    with pytest.raises(ConfigError, match="namespace"):
        AsyncRedisService(redis_url, namespace="shop:*", settings=TEST_SETTINGS)
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ConfigError, match="decode_responses"):
        AsyncRedisService(client, settings=TEST_SETTINGS)
    await client.aclose()


async def test_from_env_and_existing_client(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CACHE_NAMESPACE", namespace)
    monkeypatch.setenv("CACHE_DEFAULT_TTL", "42")
    service = AsyncRedisService.from_env()
    await service.set("k", "v")
    assert service.default_ttl == 42
    client = redis.asyncio.Redis.from_url(redis_url)
    shared = AsyncRedisService(client, namespace=namespace, settings=Settings())
    assert await shared.get("k") == "v"
    await shared.close()
    assert await client.ping()  # a client we were given is not closed
    await client.aclose()
    await service.close()


async def test_metrics(acache: AsyncRedisService) -> None:
    await acache.set("m", 1)
    await acache.get("m")
    await acache.get("m")
    await acache.get("missing")
    await acache.delete("m")
    metrics = await acache.stats()
    assert (metrics.hits, metrics.misses, metrics.sets, metrics.deletes) == (2, 1, 1, 1)
    assert metrics.hit_rate == pytest.approx(2 / 3)
    assert metrics.errors == 0
    assert not metrics.fallback_active
    assert metrics.used_memory is not None and metrics.used_memory > 0
    assert metrics.connected_clients is not None and metrics.connected_clients >= 1
    assert metrics.keys == 0 and not metrics.keys_estimated
    assert metrics.avg_latency_ms > 0
    acache.reset_stats()
    assert (await acache.stats()).hits == 0


async def test_clear_removes_the_namespace_only(
    acache: AsyncRedisService, redis_client: redis.Redis, namespace: str
) -> None:
    await acache.set_many({"a": 1, "b": 2}, tags=["t"])
    redis_client.set(f"{namespace}x:keep", b"1")
    assert await acache.clear() >= 3  # two entries, the tag's generation, the sequence
    assert list(redis_client.scan_iter(match=f"{namespace}:*")) == []
    assert redis_client.get(f"{namespace}x:keep") == b"1"
    redis_client.delete(f"{namespace}x:keep")
