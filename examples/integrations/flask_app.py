"""perfkit in an existing Flask app: cached reads with tags, the timed pool, request
metrics and compression, and the admin API at /api/admin/performance.

Run: DATABASE_URL=... REDIS_URL=... PERFKIT_ADMIN_TOKEN=... flask --app flask_app run
"""

from __future__ import annotations

import atexit
from typing import Any

from flask import Flask, abort, request

from perfkit import Perfkit
from perfkit.admin import mount_wsgi
from perfkit.cache import RedisService, cached_query
from perfkit.queries import TimedPool

cache = RedisService.from_env()  # REDIS_URL, CACHE_NAMESPACE, CACHE_DEFAULT_TTL, ...
pool = TimedPool.from_env()  # DATABASE_URL, DB_POOL_*, SLOW_QUERY_MS
kit = Perfkit(cache=cache, pool=pool)  # admin token from PERFKIT_ADMIN_TOKEN

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id integer PRIMARY KEY,
    name text NOT NULL,
    price_cents integer NOT NULL
);
INSERT INTO products VALUES (1, 'lamp', 1900), (2, 'chair', 4200) ON CONFLICT (id) DO NOTHING;
"""


@cached_query(ttl=300, tags=["product:{product_id}"], cache=cache)
def load_product(product_id: int) -> dict[str, Any] | None:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT id, name, price_cents FROM products WHERE id = %s", (product_id,)
        ).fetchone()
    return {"id": row[0], "name": row[1], "price_cents": row[2]} if row else None


app = Flask(__name__)


@app.get("/products/<int:product_id>")
def get_product(product_id: int) -> dict[str, Any]:
    product = load_product(product_id)
    if product is None:
        abort(404)
    return product


@app.put("/products/<int:product_id>/price")
def set_price(product_id: int) -> dict[str, int]:
    price_cents = int(request.args["price_cents"])
    with pool.connection() as conn:  # commits when the block ends
        conn.execute(
            "UPDATE products SET price_cents = %s WHERE id = %s", (price_cents, product_id)
        )
    cache.invalidate_tags([f"product:{product_id}"])  # before answering
    return {"id": product_id, "price_cents": price_cents}


pool.open(wait=True)
with pool.connection() as conn:
    conn.execute(SCHEMA)  # the table this example reads, with two products
kit.start()  # fleet publishing, warming schedule, performance log: threads of each worker
atexit.register(kit.stop)  # the worker leaves the fleet's live list as it exits
# Admin API under /api/admin/performance, then request metrics and compression outside.
app.wsgi_app = kit.wsgi(  # type: ignore[method-assign,assignment]
    mount_wsgi(app.wsgi_app, "/api/admin/performance", kit.wsgi_admin())
)
