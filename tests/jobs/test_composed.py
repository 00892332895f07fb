"""The parts of the jobs package composed, with real ``perfkit worker`` processes: an
async job passes the same doors as a sync one (argument binding), reports progress, is
counted in the job metrics; a cancel counts the job canceled and frees its limit slot."""

from __future__ import annotations

import time

import pytest
import redis
from rq import Retry

from perfkit.jobs import JobService
from tests.jobs._async_processors import Gate, Nap, Steps
from tests.jobs.conftest import StartWorker, wait_for

ASYNC = ("--import", "tests.jobs._async_processors")


def _outcomes(service: JobService, function: str) -> dict[str, int]:
    found = {m.function: m.outcomes for m in service.job_metrics() if m.queue == "testq"}
    return found.get(function, {})


@pytest.mark.slow
def test_async_jobs_are_counted_report_progress_and_bind_first(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    service = JobService(conn, queues=("testq",), retry_base_delay=0)
    start_worker(*ASYNC, "--concurrency", "4")
    for _ in range(3):
        service.enqueue("test.async_nap", Nap(key="naps", seconds=0.05))
    service.enqueue("test.async_steps", Steps(key="flaky", fail_times=1), retries=2)
    waiting = service.enqueue("test.async_progress", Gate(key="gate"))
    # An async function whose stored arguments do not fit: failed at once, not retried.
    service.queue("testq").enqueue_call(
        "tests.jobs._async_processors.async_add",
        args=([1], [2]),
        retry=Retry(max=3, interval=[0, 0, 0]),
    )

    wait_for(
        lambda: (
            (progress := service.job_progress(waiting)) is not None and progress.fraction == 0.5
        ),
        20,
        "the async job's progress",
    )
    progress = service.job_progress(waiting)
    assert progress is not None and progress.message == "half way"
    assert any(job.id == waiting for job in service.running_jobs())
    conn.set("gate:go", 1)
    wait_for(lambda: service.job_status(waiting) == "finished", 20, "the gated job")

    wait_for(lambda: _outcomes(service, "test.async_nap").get("finished") == 3, 20, "naps")
    assert _outcomes(service, "test.async_steps") | {} == {
        "finished": 1, "failed": 0, "retried": 1, "refused": 0, "canceled": 0,
    }  # fmt: skip
    wait_for(lambda: service.failed_jobs("testq").total == 1, 20, "the call that cannot bind")
    failed = service.failed_jobs("testq").jobs[0]
    assert failed.attempts == 1 and "PermanentJobError" in failed.error
    assert "do not fit tests.jobs._async_processors.async_add(" in failed.error
    durations = {m.function: m.duration_p95 for m in service.job_metrics()}
    assert durations["test.async_nap"] is not None and durations["test.async_nap"] < 5


@pytest.mark.slow
def test_a_canceled_job_is_counted_and_frees_its_limit_slot_at_once(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    service = JobService(conn, queues=("testq",))
    queued = service.enqueue("test.async_nap", Nap(key="never"))
    service.cancel(queued)
    assert _outcomes(service, "test.async_nap")["canceled"] == 1

    # Default intervals: a slot not freed by the cancel would wait for its lease (2
    # heartbeats of 2 s) and the maintenance pass to expire it.
    start_worker(*ASYNC, "--concurrency", "4", defaults=True)
    first = service.enqueue("test.async_one_per_tenant", Gate(key="one", seconds=60))
    wait_for(lambda: conn.llen("one:started") == 1, 20, "the first job to start")
    service.enqueue("test.async_one_per_tenant", Gate(key="one", seconds=0))
    time.sleep(0.5)
    assert conn.llen("one:started") == 1  # the second waits for the tenant's one slot
    began = time.monotonic()
    service.cancel(first)
    wait_for(lambda: conn.llen("one:started") == 2, 10, "the parked job to start")
    handed_over = time.monotonic() - began
    assert service.job_status(first) == "canceled"
    assert handed_over < 2.0, f"the slot was freed after {handed_over:.1f} s, not by the cancel"
    assert _outcomes(service, "test.async_one_per_tenant")["canceled"] == 1
