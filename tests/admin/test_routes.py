"""Each route on both adapters, in-process and through real servers (uvicorn, wsgiref),
after real traffic against real Redis, PostgreSQL and RQ."""

from __future__ import annotations

import re

from perfkit import Perfkit
from perfkit.metrics import CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE
from tests.admin.conftest import (
    AUTH,
    COMPLETED_JOBS,
    FAILED_JOBS,
    QUEUES,
    SECRET_PARAMETER,
    TOKEN,
    Client,
)


def get_json(client: Client, path: str, status: int = 200) -> dict:
    response = client.get(path, headers=AUTH)
    assert response.status_code == status, (path, response.text)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert SECRET_PARAMETER not in response.text
    assert TOKEN not in response.text
    return response.json()


def post_json(client: Client, path: str, body: object = None, status: int = 200) -> dict:
    response = client.post(path, headers=AUTH, json=body)
    assert response.status_code == status, (path, response.text)
    return response.json()


def test_read_routes_show_the_traffic(client: Client, kit: Perfkit) -> None:
    summary = get_json(client, "summary")
    assert summary["cache_hit_rate"] == 0.75  # 3 hits, 1 miss
    assert summary["failed_jobs"] == FAILED_JOBS
    assert summary["queue_depth"] == 0
    assert summary["slow_query_pct"] > 0
    assert summary["memory"]["rss_bytes"] > 0
    assert {finding["metric"] for finding in summary["recommendations"]} >= {
        "cache_hit_rate",
        "failed_jobs",
    }

    dashboard = get_json(client, "dashboard")
    assert dashboard["cache"]["hits"] == 3
    assert dashboard["database"]["queries"]["count"] >= 8
    assert dashboard["database"]["queries"]["errors"] == 1
    assert dashboard["jobs"]["queues"][0]["failed"] == FAILED_JOBS
    assert dashboard["system"]["rss_bytes"] > 0
    assert len(dashboard["database"]["queries"]["by_fingerprint"]) <= 10

    queries = get_json(client, "queries?top=3")
    stats = queries["queries"]
    assert stats["count"] >= 8 and stats["slow"] >= 1 and stats["slow_pct"] > 0
    assert len(stats["by_fingerprint"]) == 3
    assert any("pg_sleep" in slow["fingerprint"] for slow in stats["slowest"])
    # Fingerprints hold placeholders, never the parameter values (checked in get_json too).
    assert any(
        "SELECT name FROM items WHERE name = $1" in statement["fingerprint"]
        or "WHERE name = ?" in statement["fingerprint"]
        for statement in get_json(client, "queries?top=100")["queries"]["by_fingerprint"]
    )

    realtime = get_json(client, "realtime")
    assert realtime["database"]["max_size"] == 4
    assert realtime["redis"]["status"] == "up"
    assert realtime["uptime_s"] > 0

    assert isinstance(get_json(client, "trends?last=5")["points"], list)

    cache = get_json(client, "cache")
    assert cache["metrics"]["hit_rate"] == 0.75
    assert cache["metrics"]["keys"] >= 1
    assert cache["warmers"] == ["products", "broken"]

    jobs = get_json(client, "jobs")
    reports = next(queue for queue in jobs["queues"] if queue["queue"] == "reports")
    assert (reports["failed"], reports["completed"]) == (FAILED_JOBS, COMPLETED_JOBS)
    assert jobs["status"] == "degraded"  # failures in the health window, no worker running
    assert len(jobs["recent_failures"]) == FAILED_JOBS
    assert [queue["queue"] for queue in jobs["queues"]] == list(QUEUES)

    page = get_json(client, "jobs/failed?limit=2")
    assert (page["total"], page["limit"], len(page["jobs"])) == (FAILED_JOBS, 2, 2)
    rest = get_json(client, "jobs/failed?queue=reports&offset=2&limit=2")
    assert (rest["total"], len(rest["jobs"])) == (FAILED_JOBS, 1)
    ids = {job["id"] for job in page["jobs"]} | {job["id"] for job in rest["jobs"]}
    assert len(ids) == FAILED_JOBS
    assert "report failed" in rest["jobs"][0]["error"]

    assert get_json(client, "health") == {"status": "ok"}
    detailed = get_json(client, "health/detailed")
    assert detailed["status"] == "ok"
    assert {dep["name"]: dep["status"] for dep in detailed["dependencies"]} == {
        "redis": "up",
        "database": "up",
        "jobs": "up",
    }
    assert all(dep["latency_ms"] >= 0 for dep in detailed["dependencies"])

    metrics = client.get("metrics", headers=AUTH)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"] == CONTENT_TYPE
    assert re.search(r"^perfkit_cache_hits_total 3(\.0)?$", metrics.text, re.MULTILINE)
    assert 'perfkit_jobs_failed{queue="reports"} 3' in metrics.text
    scraped = client.get(
        "metrics", headers={**AUTH, "Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert scraped.headers["content-type"] == OPENMETRICS_CONTENT_TYPE
    assert scraped.text.endswith("# EOF\n")

    document = get_json(client, "openapi.json")
    assert document["openapi"] == "3.1.0"
    assert "/jobs/failed" in document["paths"]

    page_html = client.get("", headers=AUTH)
    assert page_html.status_code == 200
    assert page_html.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page_html.headers["content-security-policy"]


def test_state_changes(client: Client, kit: Perfkit) -> None:
    assert kit.jobs is not None and kit.cache is not None
    failed = get_json(client, "jobs/failed")["jobs"]
    one = failed[0]["id"]
    assert post_json(client, "jobs/retry", {"job_id": one}) == {"requeued": 1}
    assert kit.jobs.job_status(one) == "queued"
    assert post_json(client, "jobs/retry", {"job_id": one}, 409)["error"] == "conflict"
    assert post_json(client, "jobs/retry", {"job_id": "no-such-job"}, 404)["error"] == "not_found"
    assert post_json(client, "jobs/retry", {"queue": "reports"}) == {"requeued": FAILED_JOBS - 1}
    assert get_json(client, "jobs/failed")["total"] == 0

    # No worker runs: the requeued job is still queued, and never runs once canceled.
    assert post_json(client, "jobs/cancel", {"job_id": one}) == {"job_id": one, "was": "queued"}
    assert kit.jobs.job_status(one) == "canceled"
    assert post_json(client, "jobs/cancel", {"job_id": one})["was"] == "canceled"
    assert post_json(client, "jobs/cancel", {"job_id": "no-such-job"}, 404)["error"] == "not_found"

    assert post_json(client, "jobs/clear", {"queue": "reports"}) == {"cleared": COMPLETED_JOBS}
    assert kit.jobs.completed_count(QUEUES) == 0

    warm = post_json(client, "cache/warm", {"names": ["products"]})
    assert warm["ok"] is True
    assert [(r["name"], r["keys_written"]) for r in warm["results"]] == [("products", 1)]
    everything = post_json(client, "cache/warm")
    assert everything["ok"] is False
    assert [r["name"] for r in everything["results"] if not r["ok"]] == ["broken"]
    assert kit.cache.get("products") == [1, 2, 3]

    kit.cache.set("page:1", 1, tags=["pages"])
    kit.cache.set("page:2", 2)
    assert post_json(client, "cache/invalidate", {"pattern": "page:2"}) == {
        "deleted": 1,
        "tags": 0,
    }
    assert post_json(client, "cache/invalidate", {"tags": ["pages"]}) == {"deleted": 0, "tags": 1}
    assert kit.cache.get("page:1") is None and kit.cache.get("page:2") is None

    assert post_json(client, "metrics/reset") == {"reset": ["queries", "cache"]}
    assert kit.pool is not None and kit.pool.stats().queries.count == 0
    assert get_json(client, "cache")["metrics"]["hits"] == 0


def test_state_changes_are_post_only(client: Client) -> None:
    for path in ("cache/warm", "cache/invalidate", "jobs/retry", "jobs/clear", "metrics/reset"):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 405, path
        assert response.headers["allow"] == "POST"
        assert response.json()["error"] == "method_not_allowed"
    response = client.post("summary", headers=AUTH)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_jobs_route_shows_the_periodic_schedule_with_last_and_next_runs(
    client: Client, kit: Perfkit
) -> None:
    from perfkit.jobs.periodic import Periodic, PeriodicScheduler

    assert kit.jobs is not None
    assert get_json(client, "jobs")["periodic"] == []
    entry = Periodic(
        name="nightly", processor="admintest.report", every=3600, payload={"name": "n"}
    )
    (job_id,) = PeriodicScheduler(kit.jobs, [entry]).tick()
    (run,) = get_json(client, "jobs")["periodic"]
    assert (run["name"], run["processor"], run["every"]) == ("nightly", "admintest.report", 3600)
    assert run["last_job_id"] == job_id and run["last_status"] == "queued"
    assert run["last_run_at"] < run["next_run_at"]
    assert get_json(client, "dashboard")["jobs"]["periodic"] == [run]
