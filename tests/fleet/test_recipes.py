"""The documented recipes give the fleet's numbers with nothing more to call (issue 25,
item 4): each getting-started example (examples/integrations, shown verbatim in
docs/getting-started.md — tests/examples/test_getting_started.py keeps them equal) runs
under a real server with 2 workers, and ``summary`` counts every request sent, whichever
worker answers; each worker leaves the live list when the server stops.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from perfkit.embedded import free_port
from perfkit_demo.stack import wait_for_http
from tests._servers import PrivateRedis

INTEGRATIONS = Path(__file__).resolve().parents[2] / "examples" / "integrations"
TOKEN = "recipe-token-0123456789"
HEADERS = {"authorization": f"Bearer {TOKEN}", "connection": "close"}
ADMIN = "/api/admin/performance"
WORKERS = 2
REQUESTS = 60
DEADLINE = 60.0
# The recipes keep the kit's default fleet interval (2 s): a worker's liveness key lives 3
# intervals after its last publish, so one still listed this long after the server began
# stopping was not stopped by the recipe (its key would have been deleted).
LIVENESS = 3 * 2.0

pytestmark = pytest.mark.slow

RECIPES = {
    "django": ["gunicorn", "django_app:application", "-w", str(WORKERS)],
    "flask": ["gunicorn", "flask_app:app", "-w", str(WORKERS)],
    "fastapi": ["uvicorn", "fastapi_app:app", "--workers", str(WORKERS)],
}


def _bind(server: list[str], port: int) -> list[str]:
    if server[0] == "gunicorn":
        return [*server, "-b", f"127.0.0.1:{port}"]
    return [*server, "--host", "127.0.0.1", "--port", str(port)]


class Recipe:
    """One example under its server, on this test's schema and Redis."""

    def __init__(self, name: str, database_url: str, redis_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = os.environ | {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PERFKIT_ADMIN_TOKEN": TOKEN,
            "PERFKIT_ADMIN_HEALTH_OPEN": "true",
            "DB_POOL_MIN": "1",
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        argv = [sys.executable, "-m", *_bind(RECIPES[name], self.port)]
        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                argv, cwd=INTEGRATIONS, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        try:
            wait_for_http(f"{self.url}{ADMIN}/health", DEADLINE, self.process)
        except BaseException:
            self.stop()
            print(log.read_text()[-4000:])  # the server's output, in pytest's report
            raise

    def get(self, path: str) -> httpx.Response:
        # A fresh connection each time: the workers share the requests.
        response = httpx.get(self.url + path, headers=HEADERS, timeout=30)
        response.raise_for_status()
        return response

    def summary(self) -> Any:
        return self.get(f"{ADMIN}/summary").json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def products(database_url: str) -> str:
    # The recipes create their table at start-up; two workers starting at once could both
    # try, which is not what this test is about: the table is there before they start.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE products (id integer PRIMARY KEY, name text NOT NULL,"
            " price_cents integer NOT NULL)"
        )
    return database_url


@pytest.fixture(params=sorted(RECIPES))
def recipe(
    request: pytest.FixtureRequest, products: str, private_redis: PrivateRedis, tmp_path: Path
) -> Iterator[Recipe]:
    started = Recipe(request.param, products, private_redis.url, tmp_path / "server.log")
    yield started
    started.stop()


def test_summary_counts_every_request_whichever_worker_answers(
    recipe: Recipe, private_redis: PrivateRedis
) -> None:
    for _ in range(REQUESTS):
        assert recipe.get("/products/1").json()["name"] == "lamp"
    deadline = time.monotonic() + DEADLINE
    seen: list[tuple[str, int, int]] = []
    while True:
        # Settled once every answer, from either worker, is the fleet's total.
        answers = [recipe.summary() for _ in range(6)]
        seen = [(a["scope"], a["processes"], a["requests"]["requests"]) for a in answers]
        if seen == [("fleet", WORKERS, REQUESTS)] * 6:
            break
        assert time.monotonic() < deadline, f"summary never settled on the fleet's total: {seen}"
        time.sleep(0.5)
    # Answered on fresh connections, by both workers: each counts the same.
    assert [recipe.summary()["requests"]["requests"] for _ in range(10)] == [REQUESTS] * 10
    # The statements too (Django's own SQL for the Django recipe): the product was read from
    # the database once, by one of the workers, and served from the cache since.
    for _ in range(6):
        queries = recipe.get(f"{ADMIN}/queries").json()
        counts = {s["fingerprint"]: s["count"] for s in queries["queries"]["by_fingerprint"]}
        assert queries["scope"] == "fleet"
        assert counts["SELECT id, name, price_cents FROM products WHERE id = ?"] == 1

    client = redis.Redis.from_url(private_redis.url)
    alive = client.keys("*:__perfkit__:fleet:alive:*")
    assert len(alive) == WORKERS
    stopping = time.monotonic()
    recipe.stop()
    left = client.keys("*:__perfkit__:fleet:alive:*")
    if time.monotonic() - stopping < LIVENESS - 2:  # (else the keys expired anyway)
        assert left == [], "a worker did not stop its fleet publishing"
