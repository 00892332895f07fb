"""User-style code that ``mypy --strict`` must accept (and reject where marked): the typed
surface of ``@cached_query`` and the services' ``get``/``get_or_set``. Checked by
tests/cache/test_typing.py; never imported."""

from __future__ import annotations

import msgspec
import pydantic

from perfkit.cache import (
    AsyncCachedFunction,
    AsyncRedisService,
    CachedFunction,
    RedisService,
    cached_query,
)


class Product(msgspec.Struct):
    id: int
    name: str


class Book(pydantic.BaseModel):
    id: int
    title: str


cache = RedisService()
acache = AsyncRedisService()


@cached_query(ttl=60, tags=["product:{product_id}"], cache=cache)
def product(product_id: int, *, currency: str = "EUR") -> Product:
    return Product(id=product_id, name=currency)


@cached_query(ttl=60, cache=acache)
async def books(author: str) -> list[Book]:
    return [Book(id=1, title=author)]


def sync_use() -> None:
    found: Product = product(1)
    product.invalidate(1)
    again: Product = product.refresh(1, currency="USD")
    key: str = product.cache_key(1)
    typed: CachedFunction[[int], Product] = product  # noqa: F841
    maybe: Product | None = cache.get("p:1", type=Product)
    many: list[Book] | None = cache.get("b", type=list[Book])
    with_default: Product | str = cache.get("p:1", "none", type=Product)
    loaded: Book = cache.get_or_set("b:1", lambda: Book(id=1, title="t"), ttl=5)
    decoded: Book = cache.get_or_set("b:1", lambda: {"id": 1, "title": "t"}, type=Book)
    untyped = cache.get("anything")
    print(found, again, key, maybe, many, with_default, loaded, decoded, untyped)


async def async_use() -> None:
    found: list[Book] = await books("ann")
    await books.invalidate("ann")
    again: list[Book] = await books.refresh(author="ann")
    key: str = books.cache_key("ann")
    typed: AsyncCachedFunction[[str], list[Book]] = books  # noqa: F841

    async def fetch() -> Book:
        return Book(id=2, title="u")

    loaded: Book = await acache.get_or_set("b:2", fetch)
    from_sync: int = await acache.get_or_set("n", lambda: 3)
    maybe: Book | None = await acache.get("b:2", type=Book)
    print(found, again, key, loaded, from_sync, maybe)


class Repository:
    @cached_query(ttl=60, cache=cache)
    def find(self, product_id: int) -> Product:
        return Product(id=product_id, name="x")


def method_use(repo: Repository) -> None:
    found: Product = repo.find(1)
    Repository.find.invalidate(repo, 1)
    print(found)


def mistakes(repo: Repository) -> None:
    repo.find("1")  # E: wrong argument type
    product("1")  # E: wrong argument type
    product.invalidate(1, 2)  # E: too many arguments
    books.cache_key(author=1)  # E: wrong argument type
    wrong: str = product(1)  # E: the return type is Product
    print(wrong)
