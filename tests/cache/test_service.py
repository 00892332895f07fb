# Generated from test_service_async.py by tools/async_to_sync.py: do not edit.
"""RedisService against a real Redis: values, TTLs, batches, namespaces, bad input.

Written once, for both services: ``test_service.py`` is generated from
``test_service_async.py`` (tools/async_to_sync.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import msgspec
import pytest
import redis

from perfkit import ConfigError, Settings
from perfkit.cache import RedisService
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


def test_reads_take_the_lane_asked_for(
    cache: RedisService, read_lane: str, server_kind: str
) -> None:
    # read_lane is set before the cache fixture makes its service; a cluster has one lane.
    direct = read_lane == "direct" and server_kind == "standalone"
    assert (cache._pool is not None) == direct
    cache.set("k", "v")
    assert cache.get("k") == "v"


def test_set_get_delete_exists(cache: RedisService) -> None:
    cache.set("a", {"x": 1, "y": [1, 2]})
    assert cache.get("a") == {"x": 1, "y": [1, 2]}
    assert cache.exists("a")
    assert cache.delete("a", "never-set") == 1
    assert not cache.exists("a")
    assert cache.get("a") is None
    assert cache.get("a", "fallback") == "fallback"


def test_none_is_a_cached_value(cache: RedisService) -> None:
    cache.set("nothing", None)
    assert cache.exists("nothing")
    assert cache.get("nothing", "default") is None
    calls = []
    assert cache.get_or_set("nothing", lambda: calls.append(1)) is None
    assert calls == []


def test_loader_runs_once_and_is_counted(cache: RedisService) -> None:
    calls: list[int] = []

    def loader() -> int:
        calls.append(1)
        return 7

    assert cache.get_or_set("g", loader) == 7
    assert cache.get_or_set("g", loader) == 7
    assert calls == [1]
    metrics = cache.stats()
    assert (metrics.hits, metrics.misses, metrics.sets) == (1, 1, 1)


def test_values_round_trip(cache: RedisService) -> None:
    moment = dt.datetime(2026, 11, 26, 12, 30, tzinfo=dt.UTC)
    cache.set("many", ["s", 1, 2.5, True, None, {"k": "v"}])
    cache.set("when", moment)
    cache.set("struct", Product(id=1, name="lamp", price=9.5))
    cache.set("dataclass", Point(1, 2))
    assert cache.get("many") == ["s", 1, 2.5, True, None, {"k": "v"}]
    assert cache.get("when") == moment
    # Untyped reads give plain containers; cached_query decodes into the annotated type.
    assert cache.get("struct") == {"id": 1, "name": "lamp", "price": 9.5}
    assert cache.get("dataclass") == {"x": 1, "y": 2}


def test_keys_live_in_the_namespace(
    cache: RedisService, redis_client: redis.Redis, namespace: str
) -> None:
    cache.set("k", 1)
    assert redis_client.exists(f"{namespace}:k") == 1


def test_keys_are_checked_however_often_good_ones_were_read(
    cache: RedisService, redis_client: redis.Redis, namespace: str
) -> None:
    # The service keeps the namespaced form of recent keys (bounded): reading many keys,
    # long ones and str subclasses changes neither which key is written nor what is refused.

    class Key(str):
        pass

    cache.set_many({f"k{i}": i for i in range(5000)})
    cache.set("x" * 300, "long")
    cache.set(Key("sub"), "subclass")
    for _ in range(2):
        assert cache.get_many([f"k{i}" for i in range(5000)]) == {f"k{i}": i for i in range(5000)}
        assert cache.get("x" * 300) == "long"
        assert cache.get(Key("sub")) == cache.get("sub") == "subclass"
        assert len(cache._fulls) <= 4096
        for bad, error in [("", TypeError), (None, TypeError), ("__perfkit__:x", ValueError)]:
            with pytest.raises(error):
                cache.get(bad)  # type: ignore[arg-type]
    assert redis_client.get(f"{namespace}:{'x' * 300}") is not None
    assert redis_client.exists(f"{namespace}:sub", f"{namespace}:k4999") == 2


@pytest.mark.parametrize("foreign", [b"", b"plain text", b"\x01no-terminator"])
def test_value_not_written_by_perfkit_reads_as_a_miss(
    cache: RedisService, redis_client: redis.Redis, namespace: str, foreign: bytes
) -> None:
    redis_client.set(f"{namespace}:k", foreign)
    assert cache.get("k", "default") == "default"
    assert cache.get_or_set("k", lambda: "loaded", tags=["t"]) == "loaded"


def test_unencodable_value_raises_and_writes_nothing(
    cache: RedisService, redis_client: redis.Redis, namespace: str
) -> None:
    with pytest.raises(TypeError, match="type object for key 'bad'"):
        cache.set("bad", object())
    with pytest.raises(TypeError, match="dict for key 'bad'") as refused:
        cache.set_many({"good": 1, "bad": {"nested": 1j}})
    assert "complex" in str(refused.value)
    assert redis_client.exists(f"{namespace}:good", f"{namespace}:bad") == 0


def test_default_ttl_explicit_ttl_and_no_expiry(
    cache: RedisService, redis_client: redis.Redis, namespace: str
) -> None:
    cache.set("default", 1)
    cache.set("short", 1, ttl=1)
    cache.set("forever", 1, ttl=0)
    assert 299000 < redis_client.pttl(f"{namespace}:default") <= 300000
    assert 0 < redis_client.pttl(f"{namespace}:short") <= 1000
    assert redis_client.pttl(f"{namespace}:forever") == -1
    # The TTL running out is what this tests (server time: load cannot delay it).
    time.sleep(1.1)
    assert not cache.exists("short")
    assert cache.exists("forever")


# Standalone only: counts connections of a single server's pool.


@pytest.mark.standalone_only
def test_batch_operations_are_one_round_trip(cache: RedisService) -> None:
    sent: list[object] = []
    original = cache.client.connection_pool.get_connection

    def counting(*args: object, **kwargs: object) -> object:
        sent.append(args)
        return original(*args, **kwargs)

    cache.set_many({f"k{i}": i for i in range(50)}, tags=["t"])
    cache.set_many({f"u{i}": i for i in range(50)})
    cache.client.connection_pool.get_connection = counting  # type: ignore[method-assign]
    try:
        assert cache.get_many([f"u{i}" for i in range(50)] + ["missing"]) == {
            f"u{i}": i for i in range(50)
        }
        assert len(sent) == 1
        sent.clear()
        cache.set_many({f"v{i}": i for i in range(50)})
        assert len(sent) == 1
    finally:
        cache.client.connection_pool.get_connection = original  # type: ignore[method-assign]
    assert cache.get_many([f"k{i}" for i in range(50)]) == {f"k{i}": i for i in range(50)}


def test_pattern_invalidation_stays_in_the_namespace(
    cache: RedisService, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    other = RedisService(redis_url, namespace=f"{namespace}other", settings=TEST_SETTINGS)
    try:
        cache.set_many({"product:1": 1, "product:2": 2, "user:1": 3})
        other.set("product:1", "theirs")
        redis_client.set(f"{namespace}-outside:product:1", b"raw")
        assert cache.invalidate_pattern("product:*") == 2
        assert cache.get_many(["product:1", "product:2", "user:1"]) == {"user:1": 3}
        assert other.get("product:1") == "theirs"
        assert redis_client.get(f"{namespace}-outside:product:1") == b"raw"
        assert cache.invalidate_pattern("*") == 1
        assert other.get("product:1") == "theirs"
    finally:
        other.invalidate_pattern("*")
        other.close()
        redis_client.delete(f"{namespace}-outside:product:1")


def test_pattern_invalidation_in_batches(cache: RedisService) -> None:
    cache.set_many({f"bulk:{i}": i for i in range(2500)})
    assert cache.invalidate_pattern("bulk:*") == 2500
    assert cache.get_many([f"bulk:{i}" for i in range(0, 2500, 100)]) == {}


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
def test_bad_arguments_are_refused_clearly(
    cache: RedisService, call: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        call(cache)  # type: ignore[operator]
    assert cache.get_many(["k"]) == {}


def test_bad_namespace_and_decoding_client_are_refused(redis_url: str) -> None:
    with pytest.raises(ConfigError, match="namespace"):
        RedisService(redis_url, namespace="shop:*", settings=TEST_SETTINGS)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ConfigError, match="decode_responses"):
        RedisService(client, settings=TEST_SETTINGS)
    client.close()


def test_from_env_and_existing_client(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CACHE_NAMESPACE", namespace)
    monkeypatch.setenv("CACHE_DEFAULT_TTL", "42")
    service = RedisService.from_env()
    service.set("k", "v")
    assert service.default_ttl == 42
    client = redis.Redis.from_url(redis_url)
    shared = RedisService(client, namespace=namespace, settings=Settings())
    assert shared.get("k") == "v"
    shared.close()
    assert client.ping()  # a client we were given is not closed
    client.close()
    service.close()


def test_metrics(cache: RedisService) -> None:
    cache.set("m", 1)
    cache.get("m")
    cache.get("m")
    cache.get("missing")
    cache.delete("m")
    metrics = cache.stats()
    assert (metrics.hits, metrics.misses, metrics.sets, metrics.deletes) == (2, 1, 1, 1)
    assert metrics.hit_rate == pytest.approx(2 / 3)
    assert metrics.errors == 0
    assert not metrics.fallback_active
    assert metrics.used_memory is not None and metrics.used_memory > 0
    assert metrics.connected_clients is not None and metrics.connected_clients >= 1
    assert metrics.keys == 0 and (not metrics.keys_estimated)
    assert metrics.avg_latency_ms > 0
    cache.reset_stats()
    assert cache.stats().hits == 0


def test_clear_removes_the_namespace_only(
    cache: RedisService, redis_client: redis.Redis, namespace: str
) -> None:
    cache.set_many({"a": 1, "b": 2}, tags=["t"])
    redis_client.set(f"{namespace}x:keep", b"1")
    assert cache.clear() >= 3  # two entries, the tag's generation, the sequence
    assert list(redis_client.scan_iter(match=f"{namespace}:*")) == []
    assert redis_client.get(f"{namespace}x:keep") == b"1"
    redis_client.delete(f"{namespace}x:keep")
