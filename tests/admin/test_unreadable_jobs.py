"""One unreadable failed job (not UTF-8, data that does not decode) does not break the
jobs views: admin ``jobs``, ``jobs/failed``, ``dashboard``, ``POST jobs/retry`` and
``perfkit jobs failed`` list it as unreadable, keep the rest, and it can be deleted."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import redis

from perfkit import Perfkit
from tests._servers import PrivateRedis
from tests.admin.conftest import FAILED_JOBS, Client
from tests.admin.test_routes import get_json, post_json

ROOT = Path(__file__).resolve().parents[2]
NOT_UTF8 = b"\xff\xfe\xfa not utf-8"


def _corrupt(conn: redis.Redis, kit: Perfkit, keep: str) -> dict[str, str]:
    """The kit's failed jobs but ``keep`` made unreadable, each a different way; by way."""
    assert kit.jobs is not None
    ids = [job.id for job in kit.jobs.failed_jobs("reports").jobs if job.id != keep]
    assert len(ids) == FAILED_JOBS == 3
    ways = dict(zip(("exc_info", "data", "result"), ids, strict=True))
    # RQ 2's failure text in the job's hash, compressed, not UTF-8 once decompressed.
    conn.hset(f"rq:job:{ways['exc_info']}", "exc_info", zlib.compress(NOT_UTF8))
    # The call itself: neither zlib nor JSON.
    conn.hset(f"rq:job:{ways['data']}", "data", NOT_UTF8)
    # RQ 3's failure text, in the job's results stream.
    exc = base64.b64encode(zlib.compress(NOT_UTF8))
    conn.xadd(f"rq:results:{ways['result']}", {"type": 2, "exc_string": exc})
    return ways


def _cli(url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), REDIS_URL=url)
    command = [sys.executable, "-m", "perfkit.cli", "jobs", *arguments]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_unreadable_failed_jobs_are_listed_as_such_and_can_be_deleted(
    in_process: object, kit: Perfkit, kit_redis: redis.Redis, private_redis: PrivateRedis
) -> None:
    client: Client = in_process(kit)  # type: ignore[operator]
    assert kit.jobs is not None
    kit.jobs.enqueue("admintest.broken", {"name": "readable"})
    from perfkit.jobs import make_worker

    make_worker(kit_redis, ["reports"], heartbeat_interval=1, maintenance_interval=1).work(
        burst=True, logging_level="WARNING"
    )
    readable = kit.jobs.failed_jobs("reports").jobs[0].id
    ways = _corrupt(kit_redis, kit, readable)

    page = get_json(client, "jobs/failed?queue=reports")
    assert page["total"] == 4
    by_id = {job["id"]: job for job in page["jobs"]}
    assert set(by_id) == {readable, *ways.values()}
    assert "report failed" in by_id[readable]["error"]
    for job_id in ways.values():
        assert by_id[job_id]["error"].startswith("(unreadable"), by_id[job_id]
    assert len(get_json(client, "jobs")["recent_failures"]) == 4
    assert len(get_json(client, "dashboard")["jobs"]["recent_failures"]) == 4

    # An unreadable job: a 409 that says so; all of them: the readable ones requeued (a
    # job whose failure record alone cannot be read is readable).
    unreadable = [ways["exc_info"], ways["data"]]
    for job_id in unreadable:
        refused = post_json(client, "jobs/retry", {"job_id": job_id}, 409)
        assert "is unreadable, not failed" in refused["detail"], refused
    assert post_json(client, "jobs/retry", {"queue": "reports"}) == {"requeued": 2}

    listed = _cli(private_redis.url, "failed", "reports")
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    assert listed.stdout.splitlines()[0] == "reports: 2 failed (showing 1-2)"
    assert listed.stdout.count("(unreadable") == 2
    refused_cli = _cli(private_redis.url, "retry", ways["data"])
    assert refused_cli.returncode == 1 and "Traceback" not in refused_cli.stderr
    assert "is unreadable (its call does not decode)" in refused_cli.stderr
    for job_id in unreadable:
        deleted = _cli(private_redis.url, "delete", job_id, "--json")
        assert deleted.returncode == 0, deleted.stderr
        assert json.loads(deleted.stdout) == {"deleted": job_id}
        assert not kit_redis.exists(f"rq:job:{job_id}", f"rq:results:{job_id}")
    assert get_json(client, "jobs/failed?queue=reports")["total"] == 0
