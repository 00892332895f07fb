"""The reference server on bad input and on a full Redis: a clear 4xx naming what was wrong,
never a 500; reads answered from PostgreSQL with health ``degraded``."""

from __future__ import annotations

import asyncio

import redis

from tests._servers import PrivateRedis
from tests.examples.conftest import MakeClient

BAD_INPUT = [
    ("GET", "/api/products/99999999999999999999", None, 400, "product_id"),
    ("GET", "/api/products/0", None, 400, "product_id"),
    ("GET", "/api/products/9223372036854775808/analytics", None, 400, "product_id"),
    ("GET", "/api/users/99999999999999999999/orders", None, 400, "user_id"),
    ("GET", "/api/search?q=%00", None, 400, "NUL"),
    ("GET", "/api/search?q=oak%00", None, 400, "NUL"),
    ("GET", "/api/products?page=" + "9" * 5000, None, 400, "page"),
    ("PATCH", "/api/products/5", {"price_cents": 2**31}, 400, "price_cents"),
    ("PATCH", "/api/products/5", {"stock": 2**31}, 400, "stock"),
    ("PATCH", "/api/products/5", {"stock": -(2**40)}, 400, "stock"),
    ("POST", "/api/orders", {"user_id": 2**63, "items": {"5": 1}}, 400, "user_id"),
    ("POST", "/api/orders", {"user_id": 7, "items": {str(2**64): 1}}, 400, "items"),
    ("POST", "/api/orders", {"user_id": 7, "items": {"5": 2**31}}, 400, "items"),
]


async def test_bad_input_is_a_400_naming_it(make_client: MakeClient) -> None:
    async with make_client() as client:
        for method, path, body, status, named in BAD_INPUT:
            answer = await client.request(method, path, json=body)
            assert answer.status_code == status, (method, path, answer.text)
            assert named in answer.json()["error"], (path, answer.text)


async def test_bodies_are_capped(make_client: MakeClient) -> None:
    async with make_client() as client:
        big = b'{"user_id": 7, "items": {"5": 1}, "x": "' + b"a" * 10_000_000 + b'"}'
        answer = await client.post("/api/orders", content=big)
        assert answer.status_code == 413 and "at most" in answer.json()["error"]

        async def streamed() -> object:  # no Content-Length: counted while read
            for _ in range(100):
                yield b"a" * 100_000

        answer = await client.patch("/api/products/5", content=streamed())
        assert answer.status_code == 413
        # A normal body still works.
        answer = await client.patch("/api/products/5", json={"stock": 5})
        assert answer.status_code == 200 and answer.json()["stock"] == 5


async def test_a_full_redis_serves_reads_from_postgres_and_degrades_health(
    make_client: MakeClient, private_redis: PrivateRedis
) -> None:
    paths = [
        "/api/products/5",
        "/api/products?page=1&per_page=5",
        "/api/search?q=oak",
        "/api/categories",
        "/api/leaderboards/sellers",
        "/api/analytics/summary",
    ]
    async with make_client(admin_token="t" * 32) as client:
        assert (await client.get("/healthz")).json()["status"] == "ok"
        raw = redis.Redis.from_url(private_redis.url)
        raw.config_set("maxmemory-policy", "noeviction")
        raw.config_set("maxmemory", 1)
        statuses = []
        for round_ in range(5):
            answers = await asyncio.gather(*(client.get(path) for path in paths))
            statuses += [answer.status_code for answer in answers]
            update = await client.patch("/api/products/5", json={"stock": 10 + round_})
            statuses.append(update.status_code)
            # The write is seen at once: the old cached product is never served.
            assert (await client.get("/api/products/5")).json()["stock"] == 10 + round_
        assert statuses and all(status < 500 for status in statuses), statuses
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        detailed = await client.get(
            "/api/admin/performance/health/detailed",
            headers={"authorization": "Bearer " + "t" * 32},
        )
        assert detailed.json()["status"] == "degraded", detailed.text
        raw.config_set("maxmemory", 0)
        raw.close()
        assert (await client.get("/healthz")).json()["status"] == "ok"
