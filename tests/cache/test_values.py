# Generated from test_values_async.py by tools/async_to_sync.py: do not edit.
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

from perfkit.cache import RedisService, cached_query


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
        self.x, self.y = (x, y)

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


def test_cached_query_returns_pydantic_models_on_hits(cache: RedisService) -> None:
    calls: list[int] = []

    @cached_query(ttl=60, cache=cache)
    def get_book(id: int) -> Book:
        calls.append(id)
        return book(id)

    first = get_book(1)
    second = get_book(1)
    assert calls == [1]
    assert isinstance(second, Book)
    assert second == first == book(1)
    assert isinstance(second.authors[0], Author)
    assert second.price == Decimal("12.50")


def test_cached_query_returns_containers_of_pydantic_models(cache: RedisService) -> None:

    @cached_query(ttl=60, cache=cache)
    def shelf(ids: list[int]) -> dict[str, list[Book | None]]:
        return {"books": [book(i) if i else None for i in ids]}

    shelf([1, 0, 2])
    hit = shelf([1, 0, 2])
    assert hit == {"books": [book(1), None, book(2)]}
    assert isinstance(hit["books"][0], Book)


def test_cached_query_returns_a_list_of_pydantic_models(cache: RedisService) -> None:

    @cached_query(ttl=60, cache=cache)
    def books(n: int) -> list[Book]:
        return [book(i) for i in range(n)]

    books(3)
    hit = books(3)
    assert hit == [book(0), book(1), book(2)]
    assert all(isinstance(b, Book) for b in hit)


def test_get_decodes_into_the_type_asked_for(cache: RedisService) -> None:
    cache.set("book:1", book(1))
    # Untyped: plain data.
    assert cache.get("book:1") == json.loads(book(1).model_dump_json())
    typed = cache.get("book:1", type=Book)
    assert isinstance(typed, Book)
    assert typed == book(1)
    assert cache.get("book:missing", type=Book) is None
    assert cache.get("book:missing", "none", type=Book) == "none"


def test_a_value_that_does_not_fit_the_type_is_a_miss(cache: RedisService) -> None:
    cache.set("book:bad", {"id": "not a number"})
    assert cache.get("book:bad", type=Book) is None
    assert cache.stats().errors == 1


def test_get_or_set_with_type_decodes_hits(cache: RedisService) -> None:

    def load() -> Book:
        return book(7)

    assert cache.get_or_set("book:7", load, type=Book) == book(7)
    hit = cache.get_or_set("book:7", load, type=Book)
    assert isinstance(hit, Book)
    assert hit == book(7)
    assert cache.get("book:7", type=Book) == book(7)


def test_attrs_classes_round_trip(cache: RedisService) -> None:

    @cached_query(ttl=60, cache=cache)
    def shelves() -> list[Shelf]:
        return [Shelf("a", [1, 2]), Shelf("b", [])]

    shelves()
    hit = shelves()
    assert hit == [Shelf("a", [1, 2]), Shelf("b", [])]
    assert isinstance(hit[0], Shelf)
    assert cache.get_or_set("shelf", lambda: Shelf("c", [3]), type=Shelf) == Shelf("c", [3])
    assert cache.get("shelf", type=Shelf) == Shelf("c", [3])


def test_serializer_caches_any_type(cache: RedisService) -> None:
    calls: list[int] = []

    @cached_query(ttl=60, cache=cache, serializer=PointSerializer())
    def point(x: int) -> Point:
        calls.append(x)
        return Point(x, -x)

    assert point(3) == Point(3, -3)
    assert point(3) == Point(3, -3)
    assert calls == [3]
    # What Redis holds is the serializer's bytes.
    assert cache.get(point.cache_key(3)) == b"[3, -3]"
    assert point.refresh(3) == Point(3, -3)
    assert calls == [3, 3]
    point.invalidate(3)
    assert cache.get(point.cache_key(3)) is None


def test_a_type_nothing_encodes_names_the_serializer_hook(cache: RedisService) -> None:
    with pytest.raises(TypeError, match="type Point for key 'p'") as refused:
        cache.set("p", Point(1, 2))
    assert "serializer=" in str(refused.value)


def test_structs_still_decode_natively(cache: RedisService) -> None:

    class Item(msgspec.Struct):
        id: int

    cache.set("item", [Item(1)])
    assert cache.get("item", type=list[Item]) == [Item(1)]
