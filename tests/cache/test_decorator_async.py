"""@cached_query: keys, typed hits, templates, invalidate/refresh, checks on every call.

Written once, for both services: ``test_decorator.py`` is generated from
``test_decorator_async.py`` (tools/async_to_sync.py). Stampede protection is in
``test_stampede.py`` and the checks made where a function is decorated in
``test_decorator_setup.py``, both hand-written."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from perfkit.cache import AsyncRedisService, cached_query, get_default_cache, set_default_cache
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


async def test_hit_returns_the_cached_value_and_skips_the_function(
    acache: AsyncRedisService,
) -> None:
    calls: list[tuple[int, int]] = []

    @cached_query(ttl=60, cache=acache)
    async def add(a: int, b: int = 10) -> int:
        calls.append((a, b))
        return a + b

    assert await add(1) == 11
    assert await add(1, 10) == 11
    assert await add(b=10, a=1) == 11  # defaults applied, keyword order irrelevant
    assert await add(2) == 12
    assert calls == [(1, 10), (2, 10)]
    assert (await acache.stats()).hits == 2


async def test_key_is_the_same_in_every_process(acache: AsyncRedisService) -> None:
    @cached_query(cache=acache)
    async def lookup(category: str, page: int = 1, filters: dict[str, str] | None = None) -> int:
        return page

    mine = lookup.cache_key("lamps", filters={"color": "red"})  # type: ignore[attr-defined]
    # Another process, a plain function on a sync service: the same key.
    code = "\n".join(
        [
            "from perfkit.cache import cached_query, RedisService",
            "from perfkit import Settings",
            "cache = RedisService('redis://127.0.0.1:1/0', namespace='x', settings=Settings())",
            "@cached_query(cache=cache)",
            "def lookup(category: str, page: int = 1, filters: dict | None = None) -> int:",
            "    return page",
            f"lookup.__module__ = {__name__!r}",
            f"lookup.__wrapped__.__module__ = {__name__!r}",
            "print(lookup.cache_key(filters={'color': 'red'}, category='lamps'))",
        ]
    )
    other = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert mine.startswith(f"cq:{__name__}.")
    assert other.stdout.strip().split(":")[-1] == mine.split(":")[-1]


async def test_hits_decode_into_the_return_annotation(acache: AsyncRedisService) -> None:
    @cached_query(cache=acache)
    async def products(category: str) -> list[Product]:
        return [Product(id=1, name="lamp", price=9.5)]

    @cached_query(cache=acache)
    async def summary() -> Summary:
        return Summary(total=3, label="x")

    assert await products("lamps") == [Product(id=1, name="lamp", price=9.5)]
    hit = await products("lamps")
    assert hit == [Product(id=1, name="lamp", price=9.5)]
    assert isinstance(hit[0], Product)
    await summary()
    assert await summary() == Summary(total=3, label="x")
    assert (await acache.stats()).hits == 2


async def test_unencodable_argument_names_it(acache: AsyncRedisService) -> None:
    @cached_query(cache=acache)
    async def report(day: str, conn: object) -> int:
        return 1

    with pytest.raises(TypeError, match="argument 'conn' of type object"):
        await report("mon", object())

    @cached_query(cache=acache, key="report:{day}")
    async def keyed_report(day: str, conn: object) -> int:
        return 1

    assert await keyed_report("mon", object()) == 1
    assert await acache.exists("report:mon")


async def test_methods_leave_self_out_of_the_key(acache: AsyncRedisService) -> None:
    class Repository:
        @cached_query(cache=acache)
        async def find(self, id: int) -> int:
            return id * 2

    assert await Repository().find(3) == 6
    assert await Repository().find(3) == 6
    assert (await acache.stats()).hits == 1


async def test_tag_templates_and_invalidate_refresh(acache: AsyncRedisService) -> None:
    prices = {"lamps": 10.0}

    @cached_query(ttl=60, tags=["products", "category:{category}"], cache=acache)
    async def price(category: str) -> float:
        return prices[category]

    assert await price("lamps") == 10.0
    prices["lamps"] = 12.0
    assert await price("lamps") == 10.0
    await acache.invalidate_tags(["category:lamps"])
    assert await price("lamps") == 12.0
    prices["lamps"] = 13.0
    assert await price.refresh("lamps") == 13.0  # type: ignore[attr-defined]
    assert await price("lamps") == 13.0
    await price.invalidate("lamps")  # type: ignore[attr-defined]
    prices["lamps"] = 14.0
    assert await price("lamps") == 14.0

    @cached_query(tags=["{missing}"], cache=acache)
    async def broken(category: str) -> int:
        return 1

    with pytest.raises(ValueError, match="missing"):
        await broken("x")


async def test_default_cache_is_replaceable(acache: AsyncRedisService) -> None:
    set_default_cache(acache)
    try:
        if True:  # async only: the default of each kind
            assert get_default_cache(asynchronous=True) is acache
        else:
            assert get_default_cache() is acache

        @cached_query(ttl=30)
        async def value() -> int:
            return 5

        assert await value() == 5
        assert (await acache.stats()).sets == 1
    finally:
        set_default_cache(None)


async def test_all_kinds_of_signatures_bind_like_python(acache: AsyncRedisService) -> None:
    @cached_query(cache=acache)
    async def plain(a: int, b: int = 2, *, c: int = 3) -> list[int]:
        return [a, b, c]

    @cached_query(cache=acache)
    async def variadic(a: int, /, *rest: int, **named: int) -> list[object]:
        return [a, list(rest), named]

    assert await plain(1) == await plain(a=1) == await plain(1, 2, c=3) == [1, 2, 3]
    assert plain.cache_key(1) == plain.cache_key(1, c=3)  # type: ignore[attr-defined]
    assert plain.cache_key(1) != plain.cache_key(1, c=4)  # type: ignore[attr-defined]
    assert await variadic(1, 2, 3, x=4) == [1, [2, 3], {"x": 4}]
    assert await variadic(1, 2, 3, x=4) == [1, [2, 3], {"x": 4}]
    for bad_call in (
        lambda: plain(),
        lambda: plain(1, a=1),
        lambda: plain(1, 2, 3),
        lambda: plain(1, d=1),
    ):
        with pytest.raises(TypeError, match="plain"):
            await bad_call()


async def test_equal_but_differently_typed_arguments_get_their_own_keys(
    acache: AsyncRedisService,
) -> None:
    @cached_query(cache=acache)
    async def echo(value: object) -> object:
        return value

    assert [await echo(1), await echo(True), await echo(1.0), await echo("1")] == [
        1,
        True,
        1.0,
        "1",
    ]
    # Second round: hits, each its own (the key memo must not mix 1 and True).
    assert [await echo(1), await echo(True), await echo(1.0), await echo("1")] == [
        1,
        True,
        1.0,
        "1",
    ]
    assert [type(await echo(v)) for v in (1, True, 1.0)] == [int, bool, float]
    assert (await acache.stats()).hits == 7


async def test_unresolvable_return_annotation_is_a_clear_error(acache: AsyncRedisService) -> None:
    class Local(msgspec.Struct):
        x: int

    @cached_query(cache=acache)
    async def make() -> Local:
        return Local(x=1)

    with pytest.raises(TypeError, match="cannot resolve the return annotation"):
        await make()


async def test_a_key_or_tag_that_cannot_name_an_entry_is_refused_on_every_call(
    redis_url: str, namespace: str
) -> None:
    # With L1 on, a hit never reaches the service's own checks: the decorator makes them.
    service = AsyncRedisService(redis_url, namespace=namespace, settings=TEST_SETTINGS, l1=True)
    assert await asyncio.to_thread(service.wait_l1_ready)

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
