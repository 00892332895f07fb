"""The marketplace's processors, enqueued through the app and run by a real RQ worker."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import redis

from perfkit.jobs import JobService, make_worker
from tests._servers import PrivateRedis
from tests.examples.conftest import MakeClient


def _check_outputs(directory: Path) -> None:
    from PIL import Image

    report = json.loads((directory / "reports" / "seller-3-365d.json").read_text())
    assert report["seller_id"] == 3 and report["rows"]
    assert report["revenue_cents"] == sum(r["revenue_cents"] for r in report["rows"])

    for size in (32, 64):
        with Image.open(directory / "thumbnails" / f"product-5-{size}.png") as image:
            assert image.size == (size, size)
    exported = list(directory.glob("orders_of_user-*.csv"))
    assert len(exported) == 1
    assert exported[0].read_text().splitlines()[0] == "id,status,total_cents,created_at"


def _run_worker(url: str) -> None:
    connection = redis.Redis.from_url(url)
    try:
        worker = make_worker(connection, ["email", "analytics"], heartbeat_interval=1)
        worker.work(burst=True, logging_level="WARNING")
    finally:
        connection.close()


async def test_processors_run_and_write_their_output(
    make_client: MakeClient, worker_env: Path, private_redis: PrivateRedis, market_db: str
) -> None:
    async with make_client() as client:
        await client.get("/api/leaderboards/categories")  # cached, tagged "analytics"
        payloads = [
            ("analytics.sales_aggregation", {"period": "monthly"}),
            ("analytics.report_generation", {"seller_id": 3, "days": 365}),
            ("analytics.image_thumbnails", {"product_id": 5, "sizes": [32, 64]}),
            ("data.export", {"query": "orders_of_user", "params": {"user_id": 7}}),
        ]
        ids = []
        for processor, payload in payloads:
            answer = await client.post(
                "/api/jobs", json={"processor": processor, "payload": payload}
            )
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["job_id"])
        order = await client.post("/api/orders", json={"user_id": 7, "items": {"5": 1}})
        assert order.status_code == 201
        hits = (await client.market.cache.stats()).hits

        _run_worker(private_redis.url)

        service = JobService(redis.Redis.from_url(private_redis.url))
        assert [service.job_status(i) for i in ids] == ["finished"] * 4
        assert service.completed_count(["email", "analytics"]) == 5  # with the email

        with psycopg.connect(market_db) as conn:
            days = conn.execute("SELECT count(DISTINCT day) FROM daily_sales").fetchone()
        assert days is not None and days[0] >= 25
        # The aggregation invalidated "analytics": the leaderboard is recomputed.
        await client.get("/api/leaderboards/categories")
        assert (await client.market.cache.stats()).hits == hits

    _check_outputs(worker_env)
