"""The Django test project under tests/contrib/django/project, run by Django's own test
runner against the session's real PostgreSQL and Redis (in a subprocess: Django is
configured once per process, and the project has settings of its own)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from tests._servers import PrivateRedis

PROJECT = Path(__file__).parent / "project"
# One result per test in the runner's -v 2 output: "test_add (app.module.Class.test_add) ... ok"
# (a docstring's first line may come between).
RESULT = re.compile(
    r"^(\w+) \([\w.]+\.(\w+)\.\1\)\n?(?:.*\n)??.*?\.\.\. "
    r"(ok|skipped ['\"](.*)['\"]|FAIL|ERROR)$",
    re.MULTILINE,
)
# RedisCacheTests' tests of RedisCache's internals (its client class, pools, serializer).
REDIS_CACHE_INTERNALS = {
    "test_cache_client_class",
    "test_get_client",
    "test_get_connection_pool",
    "test_get_connection_pool_index",
    "test_incr_write_connection",
    "test_redis_pool_options",
    "test_serializer_dumps",
}


def run_project(database_server_url: str, env: dict[str, str], *labels: str) -> str:
    """Run the project's tests ``labels``; their output (the run must pass)."""
    params = psycopg.conninfo.conninfo_to_dict(database_server_url)
    env = {
        **os.environ,
        "PK_DB_NAME": f"pk_django_{uuid.uuid4().hex[:10]}",  # the runner makes test_<name>
        "PK_DB_HOST": str(params.get("host", "127.0.0.1")),
        "PK_DB_PORT": str(params.get("port", "5432")),
        "PK_DB_USER": str(params.get("user", "postgres")),
        "PK_DB_PASSWORD": str(params.get("password", "")),
        **env,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "test", *labels, "--noinput", "-v", "2"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    failures = output.find("\n=====")
    assert result.returncode == 0, output[failures:] if failures >= 0 else output[-6000:]
    assert "OK" in output
    return output


@pytest.mark.slow
def test_django_project(database_server_url: str, redis_url: str, namespace: str) -> None:
    output = run_project(
        database_server_url, {"PK_REDIS_URL": redis_url, "PK_NAMESPACE": namespace}, "shop"
    )
    ran = re.search(r"^Ran (\d+) tests?", output, re.MULTILINE)
    assert ran is not None, output[-3000:]
    assert int(ran[1]) >= 88, output[-3000:]  # every test of the project ran


@pytest.mark.slow
def test_django_cache_suite(
    database_server_url: str, redis_url: str, namespace: str, private_redis: PrivateRedis
) -> None:
    """Django's own cache tests pass against PerfkitCache at its defaults at least as often
    as against Django's RedisCache on the same (private: RedisCache.clear() is FLUSHDB)
    Redis; with SERIALIZER="msgspec" only the tests marked as needing pickle are skipped."""
    output = run_project(
        database_server_url,
        {
            "PK_REDIS_URL": redis_url,
            "PK_NAMESPACE": namespace,
            # No database in the URL: test_redis_pool_options picks one.
            "PK_SUITE_REDIS_URL": f"redis://127.0.0.1:{private_redis.port}",
        },
        "cachesuite",
    )
    passed: dict[str, set[str]] = {}
    skipped: dict[str, set[str]] = {}
    for test, cls, outcome, reason in RESULT.findall(output):
        if reason:
            skipped.setdefault(cls, set()).add(f"{test}: {reason}")
        elif outcome == "ok":
            passed.setdefault(cls, set()).add(test)
    redis_cache = passed["RedisCacheTests"] - REDIS_CACHE_INTERNALS
    perfkit = passed["PerfkitCacheTests"]
    assert len(redis_cache) >= 52, sorted(redis_cache)
    # Every test RedisCache passes, PerfkitCache passes (at its defaults).
    assert perfkit >= redis_cache, sorted(redis_cache - perfkit)
    # Culling is not implemented by Redis backends: the same tests skipped, for that reason.
    culling = {
        f"{test}: Culling isn't implemented."
        for test in ("test_cull", "test_zero_cull", "test_cull_delete_when_store_empty")
    }
    assert skipped["RedisCacheTests"] == culling
    assert skipped["PerfkitCacheTests"] == culling
    # With SERIALIZER="msgspec": all of them but those marked as needing pickle.
    pickle_only = skipped["PerfkitMsgspecCacheTests"] - culling
    assert pickle_only and all(": needs pickle: " in skip for skip in pickle_only), pickle_only
    needs_pickle = {skip.partition(":")[0] for skip in pickle_only}
    assert passed["PerfkitMsgspecCacheTests"] == perfkit - needs_pickle


def test_django_n_plus_one(database_server_url: str, redis_url: str, namespace: str) -> None:
    # Only the N+1 tests of the project: a request through perfkit's RouteMiddleware.
    output = run_project(
        database_server_url,
        {"PK_REDIS_URL": redis_url, "PK_NAMESPACE": namespace},
        "shop.tests.test_nplusone",
    )
    assert re.search(r"^Ran 3 tests", output, re.MULTILINE), output[-3000:]
