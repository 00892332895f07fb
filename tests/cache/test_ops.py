"""The cache's operation declarations (cache/_ops.py) and the one place that runs the
telemetry hook around them: every public operation is declared and traced once, bumps only
the counters it declares, and the L1 fast lanes decide as the traced path does."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

import pytest

from perfkit import _telemetry
from perfkit.cache import AsyncRedisService, RedisService, cached_query
from perfkit.cache._ops import OPERATIONS
from tests._servers import PrivateRedis
from tests.cache.conftest import TEST_SETTINGS, eventually, settle

# Public names of the services that are not cache operations (life cycle, health, stats).
NOT_OPERATIONS = {
    "cached_query",  # get_or_set under the seed guide's name
    "client",
    "close",
    "default_ttl",
    "fallback_active",
    "from_env",
    "namespace",
    "ping",
    "reset_stats",
    "settings",
    "stats",
    "wait_l1_ready",
}
COUNTERS = ("hits", "misses", "sets", "deletes", "errors")


class Recorded:
    """What a subscriber of the cache hook saw of one operation."""

    def __init__(self, name: str, attributes: Mapping[str, bool | int | str]) -> None:
        self.name = name
        self.attributes = dict(attributes)
        self.ended = False

    def __enter__(self) -> Recorded:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.ended = True

    def set_attribute(self, key: str, value: bool | int | str, /) -> None:
        self.attributes[key] = value

    def set_error(self, description: str, /) -> None:
        raise AssertionError("no cache operation fails without an exception")


@pytest.fixture
def recorded() -> Iterator[list[Recorded]]:
    """A subscriber of the cache hook recording every operation."""
    seen: list[Recorded] = []

    def hook(name: str, attributes: Mapping[str, bool | int | str]) -> Recorded:
        seen.append(Recorded(name, attributes))
        return seen[-1]

    _telemetry.subscribe(cache_operation=hook)
    yield seen
    _telemetry.reset()


def test_every_public_method_is_a_declared_operation_or_named_as_none() -> None:
    declared = {operation.name for operation in OPERATIONS}
    for service in (RedisService, AsyncRedisService):
        public = {name for name in dir(service) if not name.startswith("_")}
        assert public - NOT_OPERATIONS == declared - {"refresh"}  # refresh: @cached_query's
    assert len(declared) == len(OPERATIONS)


def _decorated(cache: RedisService) -> Any:
    @cached_query(ttl=60, tags=["t"], cache=cache)
    def compute(n: int) -> int:
        return n * 2

    return compute


# Each operation as a call, on a cache holding "k" (tagged "t").
CALLS: dict[str, Callable[[RedisService], object]] = {
    "get": lambda cache: cache.get("k"),
    "get_many": lambda cache: cache.get_many(["k", "absent"]),
    "exists": lambda cache: cache.exists("k"),
    "set": lambda cache: cache.set("k2", 2, tags=["t", "u"]),
    "set_many": lambda cache: cache.set_many({"a": 1, "b": 2}),
    "delete": lambda cache: cache.delete("k", "absent"),
    "get_or_set": lambda cache: cache.get_or_set("computed", lambda: 5, tags=["t"]),
    "refresh": lambda cache: _decorated(cache).refresh(3),
    "invalidate_tags": lambda cache: cache.invalidate_tags(["t"]),
    "invalidate_pattern": lambda cache: cache.invalidate_pattern("k*"),
    "clear": lambda cache: cache.clear(),
    "touch": lambda cache: cache.touch("k", 60),
}
# What each call's span says (on top of db.system.name and db.operation.name).
ATTRIBUTES = {
    "get": {"perfkit.cache.hit": True},
    "get_many": {"perfkit.cache.keys": 2, "perfkit.cache.hits": 1},
    "exists": {"perfkit.cache.hit": True},
    "set": {"perfkit.cache.keys": 1, "perfkit.cache.tags": 2},
    "set_many": {"perfkit.cache.keys": 2, "perfkit.cache.tags": 0},
    "delete": {"perfkit.cache.keys": 2, "perfkit.cache.removed": 1},
    "get_or_set": {"perfkit.cache.tags": 1, "perfkit.cache.hit": False},
    "refresh": {"perfkit.cache.tags": 1},
    "invalidate_tags": {"perfkit.cache.tags": 1},
    "invalidate_pattern": {"perfkit.cache.removed": 1},
    "clear": {"perfkit.cache.removed": 2},  # the entry and its tag's generation
    "touch": {"perfkit.cache.keys": 1, "perfkit.cache.hit": True},
}


def test_the_table_covers_every_operation() -> None:
    assert set(CALLS) == set(ATTRIBUTES) == {operation.name for operation in OPERATIONS}


@pytest.mark.standalone_only  # clear's count includes a tag key, one per slot in a cluster
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.name)
def test_each_operation_is_one_span_and_bumps_only_its_counters(
    operation: Any, cache: RedisService, recorded: list[Recorded]
) -> None:
    cache.set("k", 1, tags=["t"])
    before = cache.stats()
    recorded.clear()
    CALLS[operation.name](cache)
    after = cache.stats()
    (span,) = recorded
    assert span.name == operation.span == f"cache {operation.name}"
    assert span.ended
    assert span.attributes == {
        "db.system.name": "redis",
        "db.operation.name": operation.name,
        **ATTRIBUTES[operation.name],
    }
    bumped = {name for name in COUNTERS if getattr(after, name) != getattr(before, name)}
    assert bumped <= set(operation.counters)


async def test_async_operations_are_traced_as_the_sync_ones(
    acache: AsyncRedisService, recorded: list[Recorded]
) -> None:
    await acache.set("k", 1)
    assert await acache.get("k") == 1
    assert await acache.get("absent", "default") == "default"
    assert await acache.get_or_set("loaded", lambda: 7) == 7
    assert await acache.get_or_set("loaded", lambda: 8) == 7
    assert await acache.invalidate_pattern("load*") == 1
    assert [(span.name, span.attributes.get("perfkit.cache.hit")) for span in recorded] == [
        ("cache set", None),
        ("cache get", True),
        ("cache get", False),
        ("cache get_or_set", False),
        ("cache get_or_set", True),
        ("cache invalidate_pattern", None),
    ]
    assert all(span.ended for span in recorded)


def test_a_failing_operation_ends_its_span_and_raises_unchanged(
    cache: RedisService, recorded: list[Recorded]
) -> None:
    with pytest.raises(TypeError):
        cache.set("k", object())
    (span,) = recorded
    assert span.name == "cache set" and span.ended


def _l1_scenario(cache: RedisService, url: str) -> list[object]:
    """Reads through both L1 fast lanes (get, @cached_query) and past them (a miss), then
    after an invalidation: what they answered and counted."""

    @cached_query(ttl=60, tags=["t"], cache=cache)
    def doubled(n: int) -> int:
        return n * 2

    near = cache._near
    assert near is not None

    def from_l1(call: Callable[[], object]) -> bool:
        hits = near.hits
        call()
        return near.hits > hits

    cache.set("k", 1, tags=["t"])
    doubled(2)  # stored: its tracking push is in flight too
    # Kept in L1 once no push of our own writes is in flight (without it a late push evicted
    # one entry once under load: 8 hits of 9).
    settle(cache, url)
    eventually(lambda: from_l1(lambda: cache.get("k")) and from_l1(lambda: doubled(2)),
               timeout=5)  # fmt: skip
    cache.reset_stats()
    l1_hits = near.hits
    answers: list[object] = []
    for _ in range(3):
        answers += [cache.get("k"), cache.get("absent", "-"), doubled(2), doubled(2)]
    stats = cache.stats()
    answers += [stats.hits, stats.misses, near.hits - l1_hits]
    cache.invalidate_tags(["t"])
    return [*answers, cache.get("k"), doubled(2)]


def test_the_l1_fast_lanes_decide_as_the_traced_path(private_redis: PrivateRedis) -> None:
    results = []
    for hook in (None, Recorded):  # the fast lanes, then the traced path
        cache = RedisService(private_redis.url, namespace=f"lanes{hook is None}",
                             settings=TEST_SETTINGS, l1=True)  # fmt: skip
        try:
            assert cache.wait_l1_ready()
            _telemetry.subscribe(cache_operation=hook)
            results.append(_l1_scenario(cache, private_redis.url))
        finally:
            _telemetry.reset()
            cache.close()
    untraced, traced = results
    assert traced == untraced
    assert untraced[12:] == [9, 3, 9, None, 4]  # 9 L1 hits: the fast lanes ran
