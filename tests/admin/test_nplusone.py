"""The N+1 section of the admin's queries route and dashboard, and the recommendation
naming it, after a real request with an N+1 through the kit's WSGI middleware."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from perfkit import Perfkit
from perfkit.queries import NPlusOneDetector, get_n_plus_one_detector, set_n_plus_one_detector
from tests.admin.conftest import AUTH, SECRET_PARAMETER, Client
from tests.admin.test_routes import get_json


@pytest.fixture(autouse=True)
def detector() -> Iterator[NPlusOneDetector]:
    before = get_n_plus_one_detector()
    fresh = NPlusOneDetector(threshold=10)
    set_n_plus_one_detector(fresh)
    yield fresh
    set_n_plus_one_detector(before)


def test_queries_route_dashboard_and_recommendations_show_the_n_plus_one(
    make_kit: Callable[..., Perfkit], in_process: Callable[[Perfkit], Client]
) -> None:
    kit = make_kit()
    pool = kit.pool
    assert pool is not None
    app = Flask(__name__)

    @app.get("/orders/<int:order>")
    def order(order: int) -> dict[str, int]:
        with pool.connection() as conn:
            for line in range(15):
                conn.execute("SELECT %s::text AS item, %s::int AS line", (SECRET_PARAMETER, line))
        return {"order": order}

    app.wsgi_app = kit.wsgi(app.wsgi_app)  # type: ignore[method-assign]
    assert app.test_client().get("/orders/7").status_code == 200
    client = in_process(kit)

    (found,) = get_json(client, "queries")["n_plus_one"]
    assert found["route"] == "/orders/<int:order>"
    assert found["max_count"] == 15
    assert found["call_site"]["file"] == __file__
    assert found["call_site"]["function"].endswith("order")

    dashboard = get_json(client, "dashboard")  # also checks: no parameter value anywhere
    assert dashboard["database"]["n_plus_one"] == [found]
    (advice,) = [f for f in dashboard["recommendations"] if f["metric"] == "n_plus_one"]
    assert "/orders/<int:order>" in advice["advice"]
    assert f"{__file__}:" in advice["advice"]
    assert advice["value"] == 15 and advice["threshold"] == 10

    metrics = client.get("metrics", headers=AUTH).text
    assert 'perfkit_db_n_plus_one_total{route="/orders/<int:order>"} 1' in metrics

    # POST metrics/reset forgets the findings; the counter stays monotonic.
    assert client.post("metrics/reset", headers=AUTH).status_code == 200
    assert get_json(client, "queries")["n_plus_one"] == []
    metrics = client.get("metrics", headers=AUTH).text
    assert 'perfkit_db_n_plus_one_total{route="/orders/<int:order>"} 1' in metrics
