"""The docs recipe: an expensive query through the timed pool, cached with ``cached_query``."""

from __future__ import annotations

import msgspec
import psycopg
from psycopg.rows import class_row

from perfkit.cache import AsyncRedisService, RedisService, cached_query
from perfkit.queries import AsyncTimedPool, TimedPool


class Product(msgspec.Struct):
    id: int
    name: str
    price: int


def runs_of(pool: TimedPool | AsyncTimedPool, text: str) -> int:
    return sum(e.count for e in pool.stats().queries.by_fingerprint if e.fingerprint == text)


TOP = "SELECT id, name, price FROM products WHERE category = ? ORDER BY price DESC LIMIT ?"


def make_products(conn: psycopg.Connection[object]) -> None:
    conn.execute("CREATE TABLE products (id int PRIMARY KEY, name text, category text, price int)")
    conn.execute(
        "INSERT INTO products VALUES (1, 'desk lamp', 'lamps', 30), "
        "(2, 'floor lamp', 'lamps', 80), (3, 'chair', 'seats', 50)"
    )


def test_cached_query_over_the_pool(pool: TimedPool, redis_url: str, namespace: str) -> None:
    with pool.connection() as conn:
        make_products(conn)
    cache = RedisService(redis_url, namespace=namespace)

    @cached_query(ttl=300, tags=["products", "category:{category}"], cache=cache)
    def top_products(category: str, limit: int = 10) -> list[Product]:
        with pool.connection() as conn, conn.cursor(row_factory=class_row(Product)) as cur:
            cur.execute(
                "SELECT id, name, price FROM products WHERE category = %s "
                "ORDER BY price DESC LIMIT %s",
                (category, limit),
            )
            return cur.fetchall()

    try:
        first = top_products("lamps")
        assert [p.name for p in first] == ["floor lamp", "desk lamp"]
        assert top_products("lamps") == first  # a hit: decoded into list[Product]
        assert runs_of(pool, TOP) == 1  # the database saw one query

        with pool.connection() as conn:
            conn.execute("INSERT INTO products VALUES (4, 'wall lamp', 'lamps', 99)")
        cache.invalidate_tags(["category:lamps"])  # after the write
        assert [p.id for p in top_products("lamps")] == [4, 2, 1]
        assert runs_of(pool, TOP) == 2
    finally:
        cache.close()


async def test_async_cached_query_over_the_async_pool(
    apool: AsyncTimedPool, pool: TimedPool, redis_url: str, namespace: str
) -> None:
    with pool.connection() as conn:
        make_products(conn)
    cache = AsyncRedisService(redis_url, namespace=namespace)

    @cached_query(ttl=300, tags=["category:{category}"], cache=cache)
    async def top_products(category: str, limit: int = 10) -> list[Product]:
        async with apool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Product))
            await cur.execute(
                "SELECT id, name, price FROM products WHERE category = %s "
                "ORDER BY price DESC LIMIT %s",
                (category, limit),
            )
            return await cur.fetchall()

    try:
        first = await top_products("lamps")
        assert await top_products("lamps") == first
        await cache.invalidate_tags(["category:lamps"])
        assert await top_products("lamps") == first
        assert runs_of(apool, TOP) == 2  # one miss, one hit, one miss after invalidation
    finally:
        await cache.close()
