"""report_progress() inside a job, seen by JobService, the running jobs and the CLI while
a real ``perfkit worker`` (forking or not) runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
import redis

from perfkit import JobArgumentError, JobError
from perfkit.jobs import JobService, report_progress
from tests._servers import PrivateRedis
from tests.jobs._processors import Progress
from tests.jobs.conftest import AUTH, ROOT, StartWorker, wait_for


def _cli(url: str, *arguments: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), REDIS_URL=url)
    command = [sys.executable, "-m", "perfkit.cli", "jobs", *arguments]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("fork", [False, True], ids=["in-process", "forking"])
def test_progress_is_seen_while_the_job_runs_and_when_it_ends(
    conn: redis.Redis,
    start_worker: StartWorker,
    private_redis: PrivateRedis,
    admin: httpx.Client,
    fork: bool,
) -> None:
    service = JobService(conn, queues=("testq",))
    job_id = service.enqueue("test.progress", Progress(key="p"))
    assert service.job_progress(job_id) is None
    start_worker(*(["--fork"] if fork else []))
    wait_for(lambda: conn.exists("p:held"), 30, "the job to report half way")

    progress = service.job_progress(job_id)
    assert progress is not None and (progress.fraction, progress.message) == (0.5, "half way")
    [running] = service.running_jobs()
    assert (running.id, running.processor, running.queue) == (job_id, "test.progress", "testq")
    assert running.progress == progress
    assert _cli(private_redis.url, "status", job_id) == f"{job_id}: started, 50% done - half way\n"
    for route in ("jobs", "dashboard"):
        report = admin.get(route, headers=AUTH).json()
        [shown] = report["running"] if route == "jobs" else report["jobs"]["running"]
        assert (shown["id"], shown["progress"]["fraction"]) == (job_id, 0.5)
        assert shown["progress"]["message"] == "half way"

    conn.rpush("p:release", 1)
    wait_for(lambda: service.job_status(job_id) == "finished", 30, "the job to finish")
    done = service.job_progress(job_id)
    assert done is not None and (done.fraction, done.message) == (1.0, "done")
    assert service.running_jobs() == []
    shown = json.loads(_cli(private_redis.url, "status", job_id, "--json"))
    assert shown["status"] == "finished" and shown["progress"]["fraction"] == 1.0


def test_report_progress_refuses_a_bad_fraction_and_a_call_outside_a_job() -> None:
    with pytest.raises(JobError, match="inside a job"):
        report_progress(0.5)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(JobArgumentError, match="from 0 to 1"):
            report_progress(bad)
