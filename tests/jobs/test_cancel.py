"""JobService.cancel with real ``perfkit worker`` processes: a job not yet running never
runs, a running one is stopped (async task cancelled, forked horse killed, in-process
sync job at its check_cancelled), and each ends ``canceled``, never retried."""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis
from rq.job import Job
from rq.registry import CanceledJobRegistry, ScheduledJobRegistry

from perfkit import JobCancelledError, JobError
from perfkit.jobs import JobService, check_cancelled
from perfkit.jobs.cancel import CANCEL_MARK
from perfkit.jobs.queues import worker_queue_names
from tests._servers import PrivateRedis
from tests.jobs._async_processors import Loop, Steps
from tests.jobs._processors import Mark
from tests.jobs.conftest import ROOT, StartWorker, wait_for

ASYNC = ("--import", "tests.jobs._async_processors")
# From cancel to the job's end, on a shared machine: the stop itself is a pubsub message
# and one signal or task cancel (see benchmarks/bench_cancel.py for the times).
STOP_BOUND = 5.0


def _canceled_ids(conn: redis.Redis) -> set[str]:
    return {
        job_id
        for name in worker_queue_names(["testq"])
        for job_id in CanceledJobRegistry(name, connection=conn).get_job_ids()
    }


def _not_retried(conn: redis.Redis, service: JobService, job_id: str) -> None:
    """Canceled, in the canceled registry, and neither queued nor scheduled again (RQ
    schedules a retry in the same transaction as the status it sets)."""
    assert service.job_status(job_id) == "canceled"
    assert job_id in _canceled_ids(conn)
    assert all(
        job_id not in ScheduledJobRegistry(name, connection=conn)
        for name in worker_queue_names(["testq"])
    )
    assert all(job_id not in service.queue(name).job_ids for name in worker_queue_names(["testq"]))
    assert service.failed_jobs("testq").total == 0


@pytest.mark.slow
def test_a_queued_or_scheduled_job_never_runs_once_canceled(
    service: JobService, conn: redis.Redis, start_worker: StartWorker
) -> None:
    queued = service.enqueue("test.record", Mark(key="ran", tag="queued"))
    scheduled = service.enqueue("test.record", Mark(key="ran", tag="scheduled"), delay=1)
    assert service.cancel(queued) == "queued"
    assert service.cancel(scheduled) == "scheduled"
    assert service.job_status(queued) == service.job_status(scheduled) == "canceled"
    start_worker()
    # A later job, due after the scheduled one would have been: both had their chance.
    last = service.enqueue("test.record", Mark(key="ran", tag="last"), delay=2)
    wait_for(lambda: service.job_status(last) == "finished", 20, "the later job")
    assert conn.lrange("ran", 0, -1) == [b"last"]
    _not_retried(conn, service, queued)
    _not_retried(conn, service, scheduled)


@pytest.mark.slow
def test_a_marked_job_is_refused_at_its_start(
    service: JobService, conn: redis.Redis, start_worker: StartWorker
) -> None:
    # What a cancel racing a start leaves (or a job held elsewhere, e.g. waiting for a
    # limit, that cancel only marks): the start checks the mark and refuses.
    job_id = service.enqueue("test.record", Mark(key="ran", tag="marked"))
    conn.hset(Job.key_for(job_id), CANCEL_MARK, "1")
    start_worker()
    wait_for(lambda: service.job_status(job_id) == "canceled", 20, "the refused start")
    assert not conn.exists("ran")
    _not_retried(conn, service, job_id)


@pytest.mark.slow
@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_running_async_job_is_cancelled_and_ends_canceled(
    conn: redis.Redis, start_worker: StartWorker, concurrency: int
) -> None:
    service = JobService(conn, queues=("testq",), retry_attempts=3)
    start_worker(*ASYNC, "--concurrency", str(concurrency))
    job_id = service.enqueue("test.async_steps", Steps(key="task", hang_attempts=1, seconds=60))
    wait_for(lambda: conn.exists("task:started"), 20, "the job to start")
    assert service.cancel(job_id) == "started"
    wait_for(lambda: service.job_status(job_id) == "canceled", STOP_BOUND, "the task to stop")
    assert conn.exists("task:stopped")  # CancelledError reached the job's code
    _not_retried(conn, service, job_id)
    assert conn.get("task:attempts") == b"1"
    # The worker goes on with other jobs.
    after = service.enqueue("test.async_steps", Steps(key="after"))
    wait_for(lambda: service.job_status(after) == "finished", 10, "the next job")


@pytest.mark.slow
def test_a_forked_horse_is_killed_and_its_job_ends_canceled(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    service = JobService(conn, queues=("testq",), retry_attempts=3)
    start_worker(*ASYNC, "--fork")
    job_id = service.enqueue("test.cooperative", Loop(key="horse", check=False))
    wait_for(lambda: conn.exists("horse:started"), 20, "the job to start")
    assert service.cancel(job_id) == "started"
    wait_for(lambda: service.job_status(job_id) == "canceled", STOP_BOUND, "the horse to die")
    assert not conn.exists("horse:stopped")  # SIGKILL: no chance to run its own code
    _not_retried(conn, service, job_id)


@pytest.mark.slow
def test_an_in_process_sync_job_stops_at_its_check(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    service = JobService(conn, queues=("testq",), retry_attempts=3)
    start_worker(*ASYNC)
    job_id = service.enqueue("test.cooperative", Loop(key="coop"))
    wait_for(lambda: conn.exists("coop:started"), 20, "the job to start")
    assert service.cancel(job_id) == "started"
    wait_for(lambda: service.job_status(job_id) == "canceled", STOP_BOUND, "the check to raise")
    assert conn.exists("coop:stopped") and not conn.exists("coop:done")
    _not_retried(conn, service, job_id)


def test_only_a_job_not_over_can_be_canceled(service: JobService, conn: redis.Redis) -> None:
    with pytest.raises(JobError, match="no job"):
        service.cancel("no-such-job")
    job_id = service.enqueue("test.record", Mark(key="ran", tag="x"))
    Job.fetch(job_id, connection=conn).set_status("finished")
    with pytest.raises(JobError, match="is finished"):
        service.cancel(job_id)
    assert not conn.hexists(Job.key_for(job_id), CANCEL_MARK)
    check_cancelled()  # outside a job: nothing to check


def test_cli_cancels_a_queued_job(
    service: JobService, conn: redis.Redis, private_redis: PrivateRedis
) -> None:
    job_id = service.enqueue("test.record", Mark(key="ran", tag="cli"))
    output = subprocess.run(
        [sys.executable, "-m", "perfkit.cli", "jobs", "cancel", job_id, "--json"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "REDIS_URL": private_redis.url, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert output.strip() == f'{{"job_id":"{job_id}","was":"queued"}}'
    assert service.job_status(job_id) == "canceled"


def test_job_cancelled_error_is_permanent() -> None:
    from perfkit import PermanentJobError

    assert issubclass(JobCancelledError, PermanentJobError)
