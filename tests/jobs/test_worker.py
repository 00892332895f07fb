"""Real workers: subprocess ``perfkit worker`` killed mid-job, retry timing, both classes."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time

import pytest
import redis

from perfkit.jobs import JobService, make_worker
from perfkit.jobs.worker import ForkingJobWorker, JobWorker
from tests.jobs._processors import Block, Hold, Mark
from tests.jobs.conftest import StartWorker, wait_for

# Heartbeat TTL (2 x 1 s) + maintenance interval (1 s) + slack for process start-up.
RECOVERY_BOUND = 8.0


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and everything in its process group, as a crash would."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(5)


def _started(conn: redis.Redis, key: str) -> bool:
    return bool(conn.exists(f"{key}:attempts"))


@pytest.mark.slow
def test_sigkill_mid_job_without_retries_left_lands_in_the_failed_list(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    service = JobService(conn, retry_attempts=0)
    job_id = service.enqueue("test.block", Block(key="victim"))
    doomed = start_worker()
    wait_for(lambda: _started(conn, "victim"), 15, "the job to start")
    _kill(doomed)
    killed = time.monotonic()
    assert service.job_status(job_id) == "started"  # nobody knows yet
    start_worker()
    found = wait_for(lambda: service.failed_jobs("testq").total == 1, 20, "the failed entry")
    assert found - killed < RECOVERY_BOUND
    failed = service.failed_jobs("testq").jobs[0]
    assert failed.id == job_id
    assert "AbandonedJobError" in failed.error
    assert service.job_status(job_id) == "failed"


@pytest.mark.slow
def test_sigkill_mid_job_with_retries_left_is_retried_after_its_backoff(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    # The survivor starts first, so its scheduler owns the queue's scheduler lock (the
    # case of a dead lock holder is tests/jobs/test_scheduler.py), and is kept busy by a
    # held job so that the victim worker takes the job under test.
    service = JobService(conn, retry_attempts=2)
    service.enqueue("test.hold", Hold(key="survivor"))
    start_worker()
    wait_for(lambda: conn.exists("survivor:held"), 15, "the survivor to be busy")
    job_id = service.enqueue("test.block", Block(key="victim"))
    doomed = start_worker()
    wait_for(lambda: _started(conn, "victim"), 15, "the job to start")
    _kill(doomed)
    killed = time.monotonic()
    conn.rpush("survivor:release", 1)
    done = wait_for(lambda: conn.llen("victim:done") == 1, 20, "the retried job to finish")
    assert conn.lrange("victim:done", 0, -1) == [b"2"]  # its second attempt
    # Detection (heartbeat TTL 2 s + maintenance 1 s) plus the first backoff (1 s).
    assert done - killed < RECOVERY_BOUND + 1
    wait_for(lambda: service.job_status(job_id) == "finished", 5, "the job to be finished")
    assert service.failed_jobs("testq").total == 0


@pytest.mark.slow
def test_a_long_job_keeps_heartbeating_and_is_not_taken_for_abandoned(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    # 4 s is twice the heartbeat TTL (2 x 1 s): without heartbeats during the job, the
    # second worker's maintenance (every 1 s) would fail it as abandoned.
    service = JobService(conn, retry_attempts=0)
    job_id = service.enqueue("test.block", Block(key="long", seconds=4))
    start_worker()
    wait_for(lambda: _started(conn, "long"), 15, "the job to start")
    start_worker()
    wait_for(lambda: service.job_status(job_id) == "finished", 15, "the job to finish")
    assert conn.lrange("long:done", 0, -1) == [b"1"]
    assert service.failed_jobs("testq").total == 0


@pytest.mark.slow
def test_retries_wait_1_2_4_seconds_with_a_real_worker(
    service: JobService, conn: redis.Redis, start_worker: StartWorker
) -> None:
    start_worker()
    service.enqueue("test.flaky", {"key": "times"})
    wait_for(lambda: service.failed_jobs("testq").total == 1, 20, "the job to fail for good")
    times = [float(t) for t in conn.lrange("times", 0, -1)]
    assert len(times) == 4  # the first run and 3 retries
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # RQ's scheduler keeps whole seconds and polls every second: each gap is within
    # about a second of its target, and the schedule doubles.
    for gap, target in zip(gaps, [1, 2, 4], strict=True):
        assert target - 1 <= gap <= target + 1.3, gaps
    assert gaps[2] > gaps[1] > gaps[0] - 0.3
    assert 6 <= sum(gaps) <= 8.5, gaps


def test_forking_worker_runs_jobs_too(service: JobService, conn: redis.Redis) -> None:
    for n in range(3):
        service.enqueue("test.record", Mark(key="forked", tag=str(n)))
    worker = make_worker(conn, ["testq"], fork=True, heartbeat_interval=1, maintenance_interval=1)
    assert isinstance(worker, ForkingJobWorker)
    worker.work(burst=True, logging_level="WARNING")
    assert conn.lrange("forked", 0, -1) == [b"0", b"1", b"2"]


def test_workers_listen_high_priority_first_and_bound_recovery(conn: redis.Redis) -> None:
    worker = make_worker(conn, ["email", "analytics"], heartbeat_interval=3, maintenance_interval=7)
    assert isinstance(worker, JobWorker)  # the non-forking worker is the default
    assert worker.queue_names() == [
        "email:high",
        "analytics:high",
        "email",
        "analytics",
        "email:low",
        "analytics:low",
    ]
    assert worker.dequeue_timeout == 7  # idle workers still run maintenance on time
    assert worker.maintenance_interval == 7
    assert worker.get_heartbeat_ttl(None) == 6  # type: ignore[arg-type]


def test_cli_burst_worker_drains_the_queues(
    service: JobService, conn: redis.Redis, start_worker: StartWorker
) -> None:
    service.enqueue("test.record", Mark(key="cli", tag="a"))
    service.enqueue("test.record", Mark(key="cli", tag="b"), priority=1)
    process = start_worker("--burst")
    assert process.wait(20) == 0
    assert conn.lrange("cli", 0, -1) == [b"b", b"a"]


# redis-py 8's PubSubWorkerThread.stop() joins the listener thread, blocked in RQ's 60 s read:
# a worker that stopped it first exited a minute late (perfkit._compat.redis).
STOP_BOUND = 2.0


def test_burst_worker_on_empty_queues_exits_at_once(start_worker: StartWorker) -> None:
    process = start_worker("--burst")
    started = time.monotonic()
    assert process.wait(90) == 0
    # Process start-up (imports) is most of it; the stop itself must add no wait.
    assert time.monotonic() - started < 10.0


@pytest.mark.parametrize("fork", [False, True], ids=["simple", "fork"])
def test_idle_worker_stops_within_two_seconds_of_sigterm(
    conn: redis.Redis, start_worker: StartWorker, fork: bool
) -> None:
    process = start_worker(*(["--fork"] if fork else []))
    # Idle: waiting for a job, its listener thread blocked in its read.
    wait_for(
        lambda: any(conn.hget(key, "state") == b"idle" for key in conn.keys("rq:worker:*")),
        20,
        "the worker to be idle",
    )
    signalled = time.monotonic()
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(90) == 0
    assert time.monotonic() - signalled < STOP_BOUND
