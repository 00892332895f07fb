"""Async jobs on real ``perfkit worker --concurrency N`` processes: many at once, with the
retries, timeouts, heartbeats, recovery and registries of sync jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest
import redis
from rq.registry import FinishedJobRegistry, StartedJobRegistry

from perfkit.jobs import JobService, allow_jobs, make_worker
from perfkit.jobs.asyncrunner import AsyncJobWorker
from perfkit.jobs.queues import worker_queue_names
from tests.jobs import _async_processors
from tests.jobs._async_processors import Nap, Steps
from tests.jobs._processors import Mark
from tests.jobs.conftest import StartWorker, wait_for
from tests.jobs.test_worker import RECOVERY_BOUND

ASYNC = ("--import", "tests.jobs._async_processors")
# In-process workers run its plain functions too, as `--import` allows them.
allow_jobs("tests.jobs._async_processors")


def _async_worker(
    start_worker: StartWorker, concurrency: int, *extra: str
) -> subprocess.Popen[bytes]:
    return start_worker(*ASYNC, "--concurrency", str(concurrency), *extra)


def _idle(conn: redis.Redis) -> bool:
    return any(conn.hget(key, "state") == b"idle" for key in conn.keys("rq:worker:*"))


def _started_entries(conn: redis.Redis) -> int:
    return sum(
        StartedJobRegistry(name, connection=conn).count for name in worker_queue_names(["testq"])
    )


@pytest.mark.slow
def test_100_jobs_awaiting_1_s_finish_within_4_s_at_concurrency_50(
    service: JobService, conn: redis.Redis, start_worker: StartWorker
) -> None:
    _async_worker(start_worker, 50)
    wait_for(lambda: _idle(conn), 20, "the worker to be idle")
    began = time.monotonic()
    ids = [service.enqueue("test.async_nap", Nap(key="naps", seconds=1)) for _ in range(100)]
    done = wait_for(lambda: conn.llen("naps") == 100, 30, "100 jobs to finish")
    assert done - began <= 4.0
    wait_for(
        lambda: all(service.job_status(job_id) == "finished" for job_id in ids), 10, "statuses"
    )
    finished = sum(
        FinishedJobRegistry(name, connection=conn).count for name in worker_queue_names(["testq"])
    )
    assert finished == 100
    assert _started_entries(conn) == 0


@pytest.mark.slow
def test_concurrency_bounds_how_many_run_at_once(
    service: JobService, conn: redis.Redis, start_worker: StartWorker
) -> None:
    _async_worker(start_worker, 4)
    for _ in range(12):
        service.enqueue("test.async_nap", Nap(key="bounded", seconds=1))
    peak = 0
    deadline = time.monotonic() + 30
    while conn.llen("bounded") < 12 and time.monotonic() < deadline:
        peak = max(peak, _started_entries(conn))
        time.sleep(0.05)
    assert conn.llen("bounded") == 12
    assert peak == 4  # never more than 4, and 4 at once (the started registry says so)


@pytest.mark.slow
def test_async_jobs_are_retried_with_backoff_then_finish(
    service: JobService, conn: redis.Redis, start_worker: StartWorker
) -> None:
    _async_worker(start_worker, 8)
    job_id = service.enqueue("test.async_steps", Steps(key="flaky", fail_times=2))
    wait_for(lambda: service.job_status(job_id) == "finished", 20, "the job to finish")
    assert conn.lrange("flaky:done", 0, -1) == [b"3"]  # two failures, then the third attempt
    assert service.failed_jobs("testq").total == 0


@pytest.mark.slow
def test_an_async_job_past_its_timeout_fails_as_timed_out(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    service = JobService(conn, queues=("testq",), retry_attempts=0, job_timeout=1)
    _async_worker(start_worker, 8)
    job_id = service.enqueue("test.async_steps", Steps(key="slow", hang_attempts=1, seconds=30))
    quick = service.enqueue("test.async_nap", Nap(key="quick", seconds=0))
    wait_for(lambda: service.job_status(job_id) == "failed", 15, "the job to time out")
    failed = service.failed_jobs("testq").jobs
    assert [job.id for job in failed] == [job_id]
    assert "JobTimeoutException" in failed[0].error
    assert "(1 seconds)" in failed[0].error
    assert conn.llen("slow:done") == 0
    assert service.job_status(quick) == "finished"


@pytest.mark.slow
def test_a_long_async_job_keeps_heartbeating_and_is_not_taken_for_abandoned(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    # 4 s is twice the heartbeat TTL (2 x 1 s): the second worker's maintenance (every
    # 1 s) would fail it as abandoned if its entry were not refreshed.
    service = JobService(conn, queues=("testq",), retry_attempts=0)
    job_id = service.enqueue("test.async_steps", Steps(key="long", hang_attempts=1, seconds=4))
    _async_worker(start_worker, 8)
    wait_for(lambda: conn.exists("long:started"), 15, "the job to start")
    assert service.job_status(job_id) == "started"
    start_worker()
    wait_for(lambda: service.job_status(job_id) == "finished", 15, "the job to finish")
    assert conn.lrange("long:done", 0, -1) == [b"1"]
    assert service.failed_jobs("testq").total == 0


@pytest.mark.slow
def test_sigkill_mid_jobs_reruns_every_running_async_job_within_the_bound(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    service = JobService(conn, queues=("testq",), retry_attempts=2)
    keys = [f"victim{n}" for n in range(3)]
    for key in keys:
        service.enqueue("test.async_steps", Steps(key=key, hang_attempts=1, seconds=60))
    doomed = _async_worker(start_worker, 8)
    wait_for(lambda: all(conn.exists(f"{key}:started") for key in keys), 15, "3 jobs to start")
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(5)
    killed = time.monotonic()
    _async_worker(start_worker, 8)
    done = wait_for(
        lambda: all(conn.llen(f"{key}:done") == 1 for key in keys), 30, "the reruns to finish"
    )
    # Detection (heartbeat TTL 2 s + maintenance 1 s) plus the first backoff (1 s).
    assert done - killed < RECOVERY_BOUND + 1
    assert all(conn.lrange(f"{key}:done", 0, -1) == [b"2"] for key in keys)


@pytest.mark.slow
def test_sync_jobs_run_beside_async_ones_and_sigterm_waits_for_the_running(
    service: JobService, conn: redis.Redis, start_worker: StartWorker
) -> None:
    worker = _async_worker(start_worker, 8)
    service.enqueue("test.async_steps", Steps(key="warm", hang_attempts=1, seconds=2))
    wait_for(lambda: conn.exists("warm:started"), 15, "the async job to start")
    sync_id = service.enqueue("test.record", Mark(key="sync", tag="ran"))
    wait_for(lambda: service.job_status(sync_id) == "finished", 10, "the sync job to run")
    assert not conn.exists("warm:done")  # it ran while the async job still awaited
    os.killpg(worker.pid, signal.SIGTERM)
    assert worker.wait(20) == 0
    assert conn.lrange("warm:done", 0, -1) == [b"1"]  # the warm stop let it finish


def test_async_processors_stay_async_and_a_plain_async_function_runs(
    service: JobService, conn: redis.Redis, rq_internals: bool
) -> None:
    # Without RQ 3's internals the worker runs async jobs RQ's way (asyncio.run).
    from perfkit._acompat import is_async_callable

    assert is_async_callable(_async_processors.async_nap)
    job_id = service.enqueue(_async_processors.async_add, [1, 2, 3], queue="testq")
    worker = make_worker(
        conn, ["testq"], concurrency=4, heartbeat_interval=1, maintenance_interval=1
    )
    assert isinstance(worker, AsyncJobWorker)
    worker.work(burst=True, logging_level="WARNING")
    job = service.queue("testq").fetch_job(job_id)
    assert job is not None
    assert job.return_value() == 6


@pytest.mark.slow
def test_a_worker_idle_after_async_jobs_stops_at_once_on_sigterm(
    service: JobService, conn: redis.Redis, start_worker: StartWorker
) -> None:
    # An async job starting on the loop's thread must not leave the worker looking busy
    # while its main thread waits on the queues: RQ's handler would then only set a flag
    # that nothing reads until the next job (seen: a worker that never stopped).
    # Many short jobs keep the loop busy, so the last one starts after the main thread
    # went back to waiting on the queues.
    worker = _async_worker(start_worker, 50)
    for _ in range(100):
        service.enqueue("test.async_nap", Nap(key="short", seconds=0.05))
    wait_for(lambda: conn.llen("short") == 100, 30, "the jobs to finish")
    signalled = time.monotonic()
    os.killpg(worker.pid, signal.SIGTERM)
    assert worker.wait(30) == 0
    assert time.monotonic() - signalled < 5.0


def test_only_the_main_thread_sets_the_async_workers_state(conn: redis.Redis) -> None:
    # The invariant behind the test above, without its race: what the loop's thread
    # writes (RQ's prepare_execution sets busy) never changes what SIGTERM's handler reads.
    worker = make_worker(conn, ["testq"], concurrency=4)
    worker.set_state("idle")
    loop_side = threading.Thread(target=worker.set_state, args=("busy",))
    loop_side.start()
    loop_side.join()
    assert worker.get_state() == "idle"
    assert conn.hget(worker.key, "state") == b"idle"
