"""The reference server's endpoints on real PostgreSQL and Redis (SF 0.001)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import psycopg
import pytest
import redis
from marketplace import datagen
from marketplace.queries import Queries

from perfkit.cache import AsyncCacheWarmer
from tests.examples.conftest import ANCHOR, MakeClient

READS = (
    "/api/products?page=2&per_page=5",
    "/api/products?category_id=3",
    "/api/search?q=oak",
    "/api/search?q=lamp%20OR%20chair&max_price=5000&min_price=100",
    "/api/search?q=steel&category_id=2&page=2&per_page=3",
    "/api/products/popular",
    "/api/products/5",
    "/api/products/999999",
    "/api/products/5/analytics",
    "/api/categories",
    "/api/users/7/orders",
    "/api/users/7/orders?page=2&per_page=2",
    "/api/sellers/3/dashboard",
    "/api/leaderboards/categories",
    "/api/leaderboards/sellers",
    "/api/leaderboards/products",
    "/api/analytics/summary",
)


def _fingerprint(conninfo: str) -> str:
    digest = hashlib.sha256()
    with psycopg.connect(conninfo) as conn:
        for table, order in (
            ("products", "id"),
            ("orders", "id"),
            ("order_items", "order_id, product_id"),
            ("product_views", "product_id, viewed_at, user_id"),
        ):
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY {order}"):
                digest.update(repr(row).encode())
    return digest.hexdigest()


def test_datagen_is_deterministic_and_sized(database_url: str) -> None:
    sizes = datagen.load(database_url, sf=0.001, seed=3, anchor=ANCHOR, progress=False)
    first = _fingerprint(database_url)
    datagen.load(database_url, sf=0.001, seed=3, anchor=ANCHOR, progress=False)
    assert _fingerprint(database_url) == first
    with psycopg.connect(database_url) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("users", "sellers", "categories", "products", "orders", "product_views")
        }
        items = conn.execute("SELECT count(*) FROM order_items").fetchone()[0]  # type: ignore[index]
        indexes = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema()"
        ).fetchone()[0]  # type: ignore[index]
        newest = conn.execute("SELECT max(created_at) FROM orders").fetchone()[0]  # type: ignore[index]
    assert counts == {
        "users": sizes.users,
        "sellers": sizes.sellers,
        "categories": sizes.categories,
        "products": sizes.products,
        "orders": sizes.orders,
        "product_views": sizes.views,
    }
    assert sizes.orders <= items <= 4 * sizes.orders
    assert indexes >= 12 + 6  # secondary indexes plus primary keys
    assert newest <= ANCHOR
    assert datagen.loaded_meta(database_url) == {
        "sf": "0.001",
        "seed": "3",
        "anchor": ANCHOR.isoformat(),
        "complete": "yes",
        "loaded_at": datagen.loaded_meta(database_url)["loaded_at"],  # type: ignore[index]
    }
    other = datagen.load(database_url, sf=0.001, seed=4, anchor=ANCHOR, progress=False)
    assert other == sizes
    assert _fingerprint(database_url) != first


async def test_results_are_identical_with_caching_on_and_off(make_client: MakeClient) -> None:
    async with make_client(caching=False) as plain:
        expected = {path: await plain.get(path) for path in READS}
        assert plain.market.pool.stats().queries.count > len(READS)
    async with make_client(caching=True) as cached:
        for path in READS:
            miss = await cached.get(path)
            before = await cached.market.cache.stats()
            statements = cached.market.pool.stats().queries.count
            hit = await cached.get(path)
            after = await cached.market.cache.stats()
            # Listings read their page's ids and then its summaries: hits only (one or
            # two), never a statement.
            assert after.hits > before.hits and after.misses == before.misses, path
            assert cached.market.pool.stats().queries.count == statements, path
            assert miss.status_code == hit.status_code == expected[path].status_code, path
            assert miss.json() == hit.json() == expected[path].json(), path
    assert expected["/api/products/999999"].status_code == 404


async def test_a_cached_hit_runs_no_statement(make_client: MakeClient) -> None:
    async with make_client() as client:
        await client.get("/api/leaderboards/categories")
        before = client.market.pool.stats().queries.count
        response = await client.get("/api/leaderboards/categories")
        assert response.status_code == 200
        assert client.market.pool.stats().queries.count == before
        stats = (await client.get("/api/bench/stats")).json()
        assert (stats["reads"], stats["reads_without_sql"]) == (2, 1)  # the miss, the hit


async def test_the_bench_static_route_answers_without_cache_or_sql(
    make_client: MakeClient,
) -> None:
    async with make_client() as client:
        cache_before = await client.market.cache.stats()
        statements = client.market.pool.stats().queries.count
        response = await client.get("/api/bench/static")
        assert response.status_code == 200 and response.json()["static"] is True
        cache_after = await client.market.cache.stats()
        assert (cache_after.hits, cache_after.misses) == (cache_before.hits, cache_before.misses)
        assert client.market.pool.stats().queries.count == statements
        assert (await client.get("/api/bench/stats")).json()["reads"] == 0  # not a read


@pytest.mark.parametrize("l1", [False, True], ids=["redis", "redis+l1"])
async def test_a_price_update_is_visible_on_the_next_read(
    make_client: MakeClient, l1: bool
) -> None:
    async with make_client(l1=l1) as client:
        product = (await client.get("/api/products/popular")).json()[0]
        pid, old = product["id"], product["price_cents"]
        word = product["name"].split()[-1]
        category = product["category_id"]
        reads = {
            "detail": f"/api/products/{pid}",
            "popular": "/api/products/popular",
            "search": f"/api/search?q={word}&per_page=100",
            "listing": f"/api/products?category_id={category}&per_page=100",
        }

        def price_in(name: str, body: Any) -> int:
            if name == "detail":
                return int(body["price_cents"])
            items = body if name == "popular" else body["items"]
            return next(int(p["price_cents"]) for p in items if p["id"] == pid)

        for name, path in reads.items():
            for _ in range(2):  # cached now
                assert price_in(name, (await client.get(path)).json()) == old
        for new in (old + 101, old + 202):
            answer = await client.patch(f"/api/products/{pid}", json={"price_cents": new})
            assert answer.status_code == 200
            assert answer.json()["price_cents"] == new
            for name, path in reads.items():
                assert price_in(name, (await client.get(path)).json()) == new, name
        if l1:  # the reads above were served from process memory
            assert (await client.market.cache.stats()).l1_hits > 0


async def test_a_price_update_reloads_one_summary_not_the_listing(
    make_client: MakeClient,
) -> None:
    async with make_client() as client:
        path = "/api/products?per_page=10"
        items = (await client.get(path)).json()["items"]
        pid, old = items[3]["id"], items[3]["price_cents"]
        cheap = f"/api/search?q={items[3]['name'].split()[-1]}&max_price={old}&per_page=100"
        assert pid in [p["id"] for p in (await client.get(cheap)).json()["items"]]
        await client.get(path)  # cached: the ids and the summaries
        # A stock update does not touch the listing (summaries show no stock).
        assert (await client.patch(f"/api/products/{pid}", json={"stock": 3})).status_code == 200
        statements = client.market.pool.stats().queries.count
        assert (await client.get(path)).json()["items"] == items
        assert client.market.pool.stats().queries.count == statements
        answer = await client.patch(f"/api/products/{pid}", json={"price_cents": old + 1})
        assert answer.status_code == 200
        before = await client.market.cache.stats()
        statements = client.market.pool.stats().queries.count
        after_update = (await client.get(path)).json()["items"]
        assert [p["id"] for p in after_update] == [p["id"] for p in items]
        assert after_update[3]["price_cents"] == old + 1
        assert [p for i, p in enumerate(after_update) if i != 3] == items[:3] + items[4:]
        metrics = await client.market.cache.stats()
        # The page's ids hit; its summaries missed and were loaded by one statement.
        assert (metrics.hits - before.hits, metrics.misses - before.misses) == (1, 1)
        assert client.market.pool.stats().queries.count == statements + 1
        # A price-filtered search depends on prices: the product is no longer under it.
        assert pid not in [p["id"] for p in (await client.get(cheap)).json()["items"]]


async def test_a_summary_loaded_before_a_price_update_is_not_cached(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A summary query that ran before an update, stored after its invalidation: refused."""
    async with make_client() as client:
        path = "/api/products?per_page=5"
        first = (await client.get(path)).json()["items"][0]
        pid, old = first["id"], first["price_cents"]
        await client.market.cache.invalidate_tags([f"summary:{pid}"])  # summaries miss
        queried, updated = asyncio.Event(), asyncio.Event()
        real = Queries.summaries

        async def slow(self: Queries, product_ids: Any) -> Any:
            rows = await real(self, product_ids)
            queried.set()
            await updated.wait()  # the update commits and invalidates meanwhile
            return rows

        monkeypatch.setattr(Queries, "summaries", slow)
        reading = asyncio.create_task(client.get(path))
        await queried.wait()
        answer = await client.patch(f"/api/products/{pid}", json={"price_cents": old + 7})
        assert answer.status_code == 200
        updated.set()
        assert (await reading).json()["items"][0]["price_cents"] == old  # read before
        monkeypatch.setattr(Queries, "summaries", real)
        assert (await client.get(path)).json()["items"][0]["price_cents"] == old + 7


async def test_an_order_updates_stock_history_and_dashboard_and_enqueues_email(
    make_client: MakeClient,
) -> None:
    async with make_client() as client:
        detail = (await client.get("/api/products/5")).json()
        history = (await client.get("/api/users/7/orders")).json()
        dashboard = (await client.get(f"/api/sellers/{detail['seller_id']}/dashboard")).json()
        analytics = (await client.get("/api/products/5/analytics")).json()
        answer = await client.post("/api/orders", json={"user_id": 7, "items": {"5": 2}})
        assert answer.status_code == 201, answer.text
        order = answer.json()
        assert order["total_cents"] == 2 * detail["price_cents"]

        assert (await client.get("/api/products/5")).json()["stock"] == detail["stock"] - 2
        newest = (await client.get("/api/users/7/orders")).json()["items"][0]
        assert newest["id"] == order["id"] != history["items"][0]["id"]
        after = (await client.get(f"/api/sellers/{detail['seller_id']}/dashboard")).json()
        assert after["orders"] == dashboard["orders"] + 1
        assert after["revenue_cents"] == dashboard["revenue_cents"] + order["total_cents"]
        assert (await client.get("/api/products/5/analytics")).json()["units"] == (
            analytics["units"] + 2
        )
        queued = redis.Redis.from_url(client.market.config.redis_url)
        try:
            assert queued.llen("rq:queue:email:high") == 1
        finally:
            queued.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/products?page=0", None, 400),
        ("GET", "/api/products?per_page=abc", None, 400),
        ("GET", "/api/search", None, 400),
        ("GET", "/api/sellers/999999/dashboard", None, 404),
        ("PATCH", "/api/products/999999", {"price_cents": 5}, 404),
        ("PATCH", "/api/products/5", {"price_cents": -5}, 409),
        ("PATCH", "/api/products/5", {"colour": "red"}, 400),
        ("POST", "/api/orders", {"user_id": 7, "items": {"5": 100000}}, 409),
        ("POST", "/api/orders", {"user_id": 999999, "items": {"5": 1}}, 404),
        ("POST", "/api/orders", {"user_id": 7, "items": {"999999": 1}}, 404),
        ("POST", "/api/orders", {"user_id": 7, "items": {}}, 409),
        ("POST", "/api/jobs", {"processor": "email.send"}, 400),
        ("POST", "/api/jobs", {"processor": "analytics.report_generation"}, 400),
    ],
)
async def test_bad_requests_get_their_status(
    make_client: MakeClient, method: str, path: str, body: Any, status: int
) -> None:
    async with make_client() as client:
        answer = await client.request(method, path, json=body)
        assert answer.status_code == status, answer.text
        assert "error" in answer.json()


async def test_warmers_fill_the_seed_list(make_client: MakeClient) -> None:
    async with make_client() as client:
        results = await AsyncCacheWarmer.of(client.market.warmer).warm()
        assert [r.name for r in results] == [
            "popular_products",
            "categories",
            "analytics_summaries",
            "leaderboards",
        ]
        assert all(r.ok for r in results), results
        before = client.market.pool.stats().queries.count
        popular = (await client.get("/api/products/popular")).json()
        paths = [
            "/api/categories",
            "/api/analytics/summary",
            "/api/leaderboards/categories",
            "/api/leaderboards/sellers",
            "/api/leaderboards/products",
            "/api/products",
            *(f"/api/products/{p['id']}" for p in popular),
        ]
        for path in paths:
            assert (await client.get(path)).status_code == 200
        assert client.market.pool.stats().queries.count == before


async def test_responses_are_compressed_and_timed(make_client: MakeClient) -> None:
    async with make_client() as client:
        answer = await client.get("/api/products?per_page=100", headers={"Accept-Encoding": "gzip"})
        assert answer.headers["content-encoding"] == "gzip"
        assert answer.headers["cache-control"] == "no-cache"
        assert "etag" in answer.headers
        summary = client.market.monitor.requests.summary()
        assert summary.requests == 1


async def test_the_admin_api_is_mounted_and_needs_the_token(make_client: MakeClient) -> None:
    token = "t" * 32
    admin = "/api/admin/performance"
    async with make_client(admin_token=token) as client:
        await client.get("/api/leaderboards/categories")
        await client.get("/api/leaderboards/categories")
        assert (await client.get(f"{admin}/cache")).status_code in (401, 403)
        auth = {"Authorization": f"Bearer {token}"}
        cache = await client.get(f"{admin}/cache", headers=auth)
        assert cache.status_code == 200, cache.text
        assert "hit_rate" in cache.text
        page = await client.get(f"{admin}/", headers=auth)  # the HTML dashboard
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        warmed = await client.post(f"{admin}/cache/warm", headers=auth)
        assert warmed.status_code == 200, warmed.text
        assert "leaderboards" in warmed.text
    async with make_client() as client:  # no token: locked
        assert (await client.get(f"{admin}/cache")).status_code == 403
