"""perfkit in an existing FastAPI app: pydantic models cached with tags, the timed pool,
request metrics and compression, and the admin API at /api/admin/performance.

Run: DATABASE_URL=... REDIS_URL=... PERFKIT_ADMIN_TOKEN=... uvicorn fastapi_app:app
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from perfkit import Perfkit
from perfkit.cache import AsyncRedisService, cached_query
from perfkit.queries import AsyncTimedPool

cache = AsyncRedisService.from_env()  # REDIS_URL, CACHE_NAMESPACE, CACHE_DEFAULT_TTL, ...
pool = AsyncTimedPool.from_env()  # DATABASE_URL, DB_POOL_*, SLOW_QUERY_MS
kit = Perfkit(cache=cache, pool=pool)  # admin token from PERFKIT_ADMIN_TOKEN

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id integer PRIMARY KEY,
    name text NOT NULL,
    price_cents integer NOT NULL
);
INSERT INTO products VALUES (1, 'lamp', 1900), (2, 'chair', 4200) ON CONFLICT (id) DO NOTHING;
"""


class Product(BaseModel):
    id: int
    name: str
    price_cents: int


# Hits come back as Product instances: decoded from the return annotation.
@cached_query(ttl=300, tags=["product:{product_id}"], cache=cache)
async def load_product(product_id: int) -> Product | None:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT id, name, price_cents FROM products WHERE id = %s", (product_id,)
        )
        row = await cursor.fetchone()
    return Product(id=row[0], name=row[1], price_cents=row[2]) if row else None


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    await pool.open(wait=True)
    async with pool.connection() as conn:
        await conn.execute(SCHEMA)  # the table this example reads, with two products
    async with kit:  # fleet publishing, warming schedule, performance log: in each worker
        yield
    await pool.close()
    await cache.close()


api = FastAPI(lifespan=lifespan)
api.mount("/api/admin/performance", kit.asgi_admin())


@api.get("/products/{product_id}")
async def get_product(product_id: int) -> Product:
    product = await load_product(product_id)
    if product is None:
        raise HTTPException(status_code=404)
    return product


@api.put("/products/{product_id}/price")
async def set_price(product_id: int, price_cents: int) -> dict[str, int]:
    async with pool.connection() as conn:  # commits when the block ends
        await conn.execute(
            "UPDATE products SET price_cents = %s WHERE id = %s", (price_cents, product_id)
        )
    await cache.invalidate_tags([f"product:{product_id}"])  # before answering
    return {"id": product_id, "price_cents": price_cents}


app = kit.asgi(api)  # request metrics (outside) and compression around the whole app
