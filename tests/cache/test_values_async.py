"""Values beyond msgspec's own types: pydantic models, attrs classes, ``serializer=``, and
typed reads with ``get(key, type=...)`` / ``get_or_set(..., type=...)``.

Written once, for both services: ``test_values.py`` is generated from
``test_values_async.py`` (tools/async_to_sync.py). What needs no service is in
``test_codec.py``."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import attrs
import msgspec
import pydantic
import pytest

from perfkit.cache import AsyncRedisService, cached_query


class Author(pydantic.BaseModel):
    name: str
    born: dt.date


class Book(pydantic.BaseModel):
    id: int
    title: str
    price: Decimal
    authors: list[Author] = []
    published: dt.datetime | None = None


@attrs.define
class Shelf:
    label: str
    book_ids: list[int]


class Point:
    """A type neither msgspec nor pydantic knows."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    __hash__ = None  # type: ignore[assignment]


class PointSerializer:
    """A serializer= for Point: JSON, safe to load from a shared Redis."""

    def dumps(self, value: Point) -> bytes:
        return json.dumps([value.x, value.y]).encode()

    def loads(self, data: bytes) -> Point:
        x, y = json.loads(data)
        return Point(x, y)


def book(id: int) -> Book:
    return Book(
        id=id,
        title=f"Book {id}",
        price=Decimal("12.50"),
        authors=[Author(name="Ann", born=dt.date(1970, 5, 1))],
        published=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    )


async def test_cached_query_returns_pydantic_models_on_hits(acache: AsyncRedisService) -> None:
    calls: list[int] = []

    @cached_query(ttl=60, cache=acache)
    async def get_book(id: int) -> Book:
        calls.append(id)
        return book(id)

    first = await get_book(1)
    second = await get_book(1)
    assert calls == [1]
    assert isinstance(second, Book)
    assert second == first == book(1)
    assert isinstance(second.authors[0], Author)
    assert second.price == Decimal("12.50")


async def test_cached_query_returns_containers_of_pydantic_models(
    acache: AsyncRedisService,
) -> None:
    @cached_query(ttl=60, cache=acache)
    async def shelf(ids: list[int]) -> dict[str, list[Book | None]]:
        return {"books": [book(i) if i else None for i in ids]}

    await shelf([1, 0, 2])
    hit = await shelf([1, 0, 2])
    assert hit == {"books": [book(1), None, book(2)]}
    assert isinstance(hit["books"][0], Book)


async def test_cached_query_returns_a_list_of_pydantic_models(acache: AsyncRedisService) -> None:
    @cached_query(ttl=60, cache=acache)
    async def books(n: int) -> list[Book]:
        return [book(i) for i in range(n)]

    await books(3)
    hit = await books(3)
    assert hit == [book(0), book(1), book(2)]
    assert all(isinstance(b, Book) for b in hit)


async def test_get_decodes_into_the_type_asked_for(acache: AsyncRedisService) -> None:
    await acache.set("book:1", book(1))
    # Untyped: plain data.
    assert await acache.get("book:1") == json.loads(book(1).model_dump_json())
    typed = await acache.get("book:1", type=Book)
    assert isinstance(typed, Book)
    assert typed == book(1)
    assert await acache.get("book:missing", type=Book) is None
    assert await acache.get("book:missing", "none", type=Book) == "none"


async def test_a_value_that_does_not_fit_the_type_is_a_miss(acache: AsyncRedisService) -> None:
    await acache.set("book:bad", {"id": "not a number"})
    assert await acache.get("book:bad", type=Book) is None
    assert (await acache.stats()).errors == 1


async def test_get_or_set_with_type_decodes_hits(acache: AsyncRedisService) -> None:
    async def load() -> Book:
        return book(7)

    assert await acache.get_or_set("book:7", load, type=Book) == book(7)
    hit = await acache.get_or_set("book:7", load, type=Book)
    assert isinstance(hit, Book)
    assert hit == book(7)
    assert await acache.get("book:7", type=Book) == book(7)


async def test_attrs_classes_round_trip(acache: AsyncRedisService) -> None:
    @cached_query(ttl=60, cache=acache)
    async def shelves() -> list[Shelf]:
        return [Shelf("a", [1, 2]), Shelf("b", [])]

    await shelves()
    hit = await shelves()
    assert hit == [Shelf("a", [1, 2]), Shelf("b", [])]
    assert isinstance(hit[0], Shelf)
    assert await acache.get_or_set("shelf", lambda: Shelf("c", [3]), type=Shelf) == Shelf("c", [3])
    assert await acache.get("shelf", type=Shelf) == Shelf("c", [3])


async def test_serializer_caches_any_type(acache: AsyncRedisService) -> None:
    calls: list[int] = []

    @cached_query(ttl=60, cache=acache, serializer=PointSerializer())
    async def point(x: int) -> Point:
        calls.append(x)
        return Point(x, -x)

    assert await point(3) == Point(3, -3)
    assert await point(3) == Point(3, -3)
    assert calls == [3]
    # What Redis holds is the serializer's bytes.
    assert await acache.get(point.cache_key(3)) == b"[3, -3]"
    assert await point.refresh(3) == Point(3, -3)
    assert calls == [3, 3]
    await point.invalidate(3)
    assert await acache.get(point.cache_key(3)) is None


async def test_a_type_nothing_encodes_names_the_serializer_hook(acache: AsyncRedisService) -> None:
    with pytest.raises(TypeError, match="type Point for key 'p'") as refused:
        await acache.set("p", Point(1, 2))
    assert "serializer=" in str(refused.value)


async def test_structs_still_decode_natively(acache: AsyncRedisService) -> None:
    class Item(msgspec.Struct):
        id: int

    await acache.set("item", [Item(1)])
    assert await acache.get("item", type=list[Item]) == [Item(1)]
