"""Plans of slow statements in the admin: the queries route, the dashboard's data and the
recommendations, with no parameter value in any of them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from perfkit import Perfkit
from perfkit.queries import QueryStats, TimedPool
from tests.admin.conftest import SECRET_PARAMETER, Client
from tests.admin.test_routes import get_json


@pytest.fixture
def explaining_pool(database_url: str) -> Iterator[TimedPool]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL);"
            "INSERT INTO people SELECT i, 'p' || i FROM generate_series(1, 30000) i;"
            "ANALYZE people"
        )
    with TimedPool(
        database_url, min_size=1, max_size=2, query_stats=QueryStats(slow_query_ms=0),
        explain=True,
    ) as pool:  # fmt: skip
        yield pool


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children", []):
        yield from nodes(child)


def test_the_plan_is_in_the_queries_route_and_the_dashboard(
    make_kit: Callable[..., Perfkit],
    explaining_pool: TimedPool,
    in_process: Callable[[Perfkit], Client],
) -> None:
    explaining_pool.fetch("SELECT id FROM people WHERE email = %s", (SECRET_PARAMETER,))
    sampler = explaining_pool.query_stats.plans
    assert sampler is not None
    deadline = time.monotonic() + 20
    while sampler.stats().explains < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    client = in_process(make_kit(pool=explaining_pool))

    (plan,) = get_json(client, "queries")["queries"]["plans"]  # no secret in it either
    assert plan["fingerprint"] == "SELECT id FROM people WHERE email = ?"
    (costliest,) = [n for n in nodes(plan["root"]) if n.get("costliest")]
    assert costliest["node"] == "Seq Scan" and costliest["relation"].endswith(".people")

    dashboard = get_json(client, "dashboard")
    assert dashboard["database"]["queries"]["plans"] == [plan]
    hints = [f for f in dashboard["recommendations"] if f["metric"] == "seq_scan"]
    assert len(hints) == 1 and "people (email)" in hints[0]["advice"]
    summary = get_json(client, "summary")
    assert [f for f in summary["recommendations"] if f["metric"] == "seq_scan"] == hints
