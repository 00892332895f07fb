"""Django's statements are the kit's database source (issue 25, item 3): with the setup of
docs/django.md, the admin's ``queries``, the dashboard's ``database``, the recommendations
and ``perfkit_db_*`` come from them, on real PostgreSQL, with Django's pool on and off.

The site (``_dbsource_site.py``) runs in a process of its own: Django is configured once
per process, with the settings of this test (its own schema).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SITE = Path(__file__).with_name("_dbsource_site.py")
ROOT = Path(__file__).resolve().parents[3]
BOOK_SELECT = "SELECT id, pg_sleep(?)::text FROM books WHERE id = ?"


def _run_site(database_url: str, *, pool: bool) -> dict[str, Any]:
    env = os.environ | {
        "DATABASE_URL": database_url,
        "PKDB_POOL": "1" if pool else "0",
        "SLOW_QUERY_MS": "10",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, str(SITE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    answers: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answers


@pytest.mark.parametrize("pool", [False, True], ids=["no-pool", "django-pool"])
def test_the_admin_reports_djangos_statements(database_url: str, pool: bool) -> None:
    answers = _run_site(database_url, pool=pool)
    counted = answers["counted"]
    assert counted >= 3  # three page views' SELECTs at least, and the set-up

    queries = answers["queries"]
    assert queries["status"] == 200, queries
    report = queries["body"]
    assert report["queries"]["count"] == counted
    books = {s["fingerprint"]: s for s in report["queries"]["by_fingerprint"]}
    assert books[BOOK_SELECT]["count"] == 3
    assert books[BOOK_SELECT]["slow"] == 3  # 30 ms each, SLOW_QUERY_MS=10

    dashboard = answers["dashboard"]["body"]
    assert dashboard["database"] is not None
    assert dashboard["database"]["queries"]["count"] == counted
    realtime = answers["realtime"]["body"]
    if pool:
        # Django's psycopg pool: its numbers, as for a TimedPool.
        assert report["pool"]["name"] == "default" and report["pool"]["requests"] >= 1
        assert dashboard["database"]["pool"]["max_size"] >= 1
        assert realtime["database"]["name"] == "default"
    else:
        # No pool: the admin says there is none rather than answering zeros.
        assert report["pool"] is None
        assert dashboard["database"]["pool"] is None
        assert realtime["database"] is None

    summary = answers["summary"]["body"]
    assert summary["slow_query_pct"] == pytest.approx(100.0 * report["queries"]["slow"] / counted)
    assert "slow_query_pct" in {finding["metric"] for finding in summary["recommendations"]}

    metrics = answers["metrics"]
    assert f"perfkit_db_queries_statements_total {counted}" in metrics
    assert ("perfkit_db_pool_connections_open" in metrics) is pool

    assert answers["reset"]["reset"] == ["queries"]
    assert answers["counted_after_reset"] == 0
