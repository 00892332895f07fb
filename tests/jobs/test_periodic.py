"""Periodic jobs: once per period across many schedulers, surviving the scheduler's death."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest
import redis

from perfkit import ConfigError, PayloadError, Settings
from perfkit.jobs import JobService
from perfkit.jobs.periodic import Periodic, PeriodicScheduler, default_schedule, periodic_runs
from tests._servers import PrivateRedis
from tests.jobs.conftest import ROOT, StartWorker, wait_for


def _periods(conn: redis.Redis) -> list[int]:
    """The start (epoch seconds) of each period a tick ran for, from its job id."""
    return [int(raw.decode().rsplit("-", 1)[1]) for raw in conn.lrange("ticks", 0, -1)]


def _once_each(starts: list[int], every: int = 2) -> bool:
    return sorted(starts) == list(range(min(starts), max(starts) + every, every))


@pytest.mark.slow
def test_three_workers_with_cron_run_each_period_once_and_survive_the_schedulers_death(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    workers = [start_worker("--import", "tests.jobs._periodic", "--with-cron") for _ in range(3)]
    wait_for(lambda: conn.llen("ticks") >= 3, 30, "three periods (2 s each)")
    # Kill whichever process enqueued the last period, then the next one that does.
    by_pid = {worker.pid: worker for worker in workers}
    for _ in range(2):
        runs = {run.name: run for run in periodic_runs(JobService(conn))}
        scheduler = runs["test-ticks"].last_scheduler
        assert scheduler is not None
        victim = by_pid.pop(int(scheduler.rsplit(":", 1)[1]))
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(5)
        seen = conn.llen("ticks")
        wait_for(lambda seen=seen: conn.llen("ticks") >= seen + 2, 30, "two more periods")
    periods = _periods(conn)
    assert len(periods) >= 7
    assert len(set(periods)) == len(periods), periods  # no period twice
    assert _once_each(periods), periods  # and none skipped
    (run,) = [r for r in periodic_runs(JobService(conn)) if r.name == "test-ticks"]
    assert run.every == 2 and run.processor == "test.tick"
    assert run.last_scheduler == f"{os.uname().nodename}:{next(iter(by_pid))}"
    assert run.last_run_at is not None and run.next_run_at > run.last_run_at


def test_concurrent_passes_enqueue_a_period_once(conn: redis.Redis) -> None:
    service = JobService(conn)
    entry = Periodic(name="t", processor="test.tick", every=60, payload={"key": "k"})
    schedulers = [PeriodicScheduler(service, [entry]) for _ in range(8)]
    barrier = threading.Barrier(len(schedulers))
    enqueued: list[str] = []

    def tick(scheduler: PeriodicScheduler) -> None:
        barrier.wait()
        enqueued.extend(scheduler.tick(now=6000.0))

    threads = [threading.Thread(target=tick, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert enqueued == ["periodic-t-6000"]
    assert schedulers[0].tick(now=6059.0) == []  # same period
    assert schedulers[1].tick(now=6060.0) == ["periodic-t-6060"]
    assert schedulers[2].tick(now=5990.0) == []  # a clock behind never reruns a period
    (run,) = periodic_runs(service, now=6061.0)
    assert run.last_job_id == "periodic-t-6060" and run.last_status == "queued"
    assert run.next_run_at.timestamp() == 6120.0
    # A longer period never reruns the time already covered: its 6000-6120 period
    # overlaps the claimed 6060 one, so the next run is the one starting at 6120.
    longer = PeriodicScheduler(
        service, [Periodic(name="t", processor="test.tick", every=120, payload={"key": "k"})]
    )
    assert longer.tick(now=6100.0) == []
    assert longer.tick(now=6120.0) == ["periodic-t-6120"]


def test_schedule_entries_are_checked(conn: redis.Redis) -> None:
    service = JobService(conn)
    with pytest.raises(ConfigError, match=r"every must be whole seconds >= 1, got 0\.5"):
        PeriodicScheduler(service, [Periodic(name="t", processor="test.tick", every=0.5)])  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match="no processor named 'nope'"):
        PeriodicScheduler(service, [Periodic(name="t", processor="nope", every=5)])
    with pytest.raises(PayloadError, match="missing required field `key`"):
        PeriodicScheduler(service, [Periodic(name="t", processor="test.tick", every=5)])


def test_the_default_schedule_warms_the_cache_every_cache_warmup_interval() -> None:
    (entry,) = [
        e for e in default_schedule(Settings(cache_warmup_interval=600)) if e.name == "cache.warm"
    ]
    assert entry.processor == "cache.warm" and entry.every == 600


def test_perfkit_cron_enqueues_and_stops_on_sigterm(
    conn: redis.Redis, private_redis: PrivateRedis
) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), REDIS_URL=private_redis.url)
    command = [sys.executable, "-m", "perfkit.cli", "cron", "--import", "tests.jobs._periodic"]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        service = JobService(conn, queues=["testq"])
        wait_for(lambda: service.stats().queue("testq").waiting >= 1, 30, "a periodic job")
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


def test_publish_lists_entries_not_run_yet_and_keeps_last_runs(conn: redis.Redis) -> None:
    service = JobService(conn)
    entry = Periodic(name="t", processor="test.tick", every=60, payload={"key": "k"})
    scheduler = PeriodicScheduler(service, [entry])
    scheduler.publish()
    (run,) = periodic_runs(service, now=100.0)
    assert (run.last_run_at, run.last_job_id, run.last_status) == (None, None, None)
    assert run.next_run_at.timestamp() == 100.0  # due now
    scheduler.tick(now=6000.0)
    scheduler.publish()  # a scheduler starting later does not reset the last run
    (run,) = periodic_runs(service, now=6001.0)
    assert run.last_job_id == "periodic-t-6000"


def test_perfkit_jobs_schedule_shows_last_and_next_runs(
    conn: redis.Redis, private_redis: PrivateRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    from perfkit.cli import main

    assert main(["jobs", "schedule", "--redis-url", private_redis.url]) == 0
    assert "no periodic jobs scheduled" in capsys.readouterr().out
    entry = Periodic(name="t", processor="test.tick", every=60, payload={"key": "k"})
    PeriodicScheduler(JobService(conn), [entry]).tick(now=6000.0)
    assert main(["jobs", "schedule", "--redis-url", private_redis.url]) == 0
    table = capsys.readouterr().out
    assert "test.tick" in table and "1970-01-01 01:40:00" in table and "queued" in table
    assert main(["jobs", "schedule", "--json", "--redis-url", private_redis.url]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["last_job_id"] == "periodic-t-6000" and run["every"] == 60
