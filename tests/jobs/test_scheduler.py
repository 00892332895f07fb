"""Recovery in seconds: the only worker SIGKILLed while holding RQ's scheduler lock."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time

import pytest
import redis
from rq.scheduler import RQScheduler

from perfkit.jobs import JobService
from perfkit.jobs.scheduler import LOCK_TTL, Scheduler
from tests.jobs._processors import Block, Mark
from tests.jobs.conftest import StartWorker, run_burst, wait_for

LOCK = "rq:scheduler-lock:testq"


@pytest.mark.slow
def test_the_only_worker_killed_with_the_scheduler_lock_is_recovered_within_10_s(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    service = JobService(conn)  # the defaults: 3 retries, the first after 1 s
    service.enqueue("test.block", Block(key="victim"))
    doomed = start_worker(defaults=True)  # default heartbeat and maintenance intervals
    wait_for(lambda: conn.exists("victim:attempts"), 20, "the job to start")
    wait_for(lambda: conn.exists(LOCK), 10, "the worker's scheduler to take its lock")
    assert 0 < conn.ttl(LOCK) <= LOCK_TTL  # RQ's own lease would be 61 s
    os.killpg(doomed.pid, signal.SIGKILL)  # worker, scheduler process: all of it
    doomed.wait(5)
    killed = time.monotonic()
    start_worker(defaults=True)
    again = wait_for(lambda: conn.get("victim:attempts") == b"2", 30, "the job to run again")
    assert again - killed <= 10
    wait_for(lambda: conn.lrange("victim:done", 0, -1) == [b"2"], 10, "the retry to finish")


def test_a_worker_starts_perfkits_scheduler_on_rq_3_else_rqs(
    conn: redis.Redis, rq_internals: bool
) -> None:
    due = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    queue = JobService(conn).queue("testq")
    queue.enqueue_at(due, "tests.jobs._processors.record", Mark(key="due", tag="x"))
    worker = run_burst(conn, with_scheduler=True)
    # Either scheduler moved the due job onto its queue; perfkit's shortens its lock lease.
    assert conn.lrange("due", 0, -1) == [b"x"]
    assert type(worker.scheduler) is (Scheduler if rq_internals else RQScheduler)


def test_a_sleeping_scheduler_stops_at_once_on_sigterm(conn: redis.Redis) -> None:
    """RQ's loop sleeps its interval between passes; a worker's warm shutdown SIGTERMs its
    scheduler and joins it, so a sleeping scheduler held up every stop (the demo's Ctrl-C)."""
    scheduler = Scheduler(["testq"], connection=conn, interval=30, logging_level="WARNING")
    scheduler.acquire_locks()
    process = scheduler.start()
    # Registered and its first pass done: it is now in its 30 s pause.
    wait_for(lambda: conn.hget(scheduler.key, "last_heartbeat"), 20, "the scheduler's first pass")
    signalled = time.monotonic()
    os.kill(process.pid, signal.SIGTERM)
    process.join(60)
    assert time.monotonic() - signalled < 5  # its pause was 30 s
    assert process.exitcode == 0
    assert not conn.exists(LOCK)  # stopped cleanly: RQ's stop() released its lock
