from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from perfkit import ConfigError, JobError
from perfkit.jobs import JobService, JobStats, Priority
from perfkit.jobs.serializer import JobSerializer
from perfkit.settings import Settings
from tests._servers import PrivateRedis
from tests.jobs._processors import Mark, plain_add
from tests.jobs.conftest import run_burst


def _job(conn: redis.Redis, job_id: str) -> Job:
    return Job.fetch(job_id, connection=conn, serializer=JobSerializer)


def test_enqueue_returns_the_job_id_on_the_priority_queue(
    service: JobService, conn: redis.Redis
) -> None:
    normal = service.enqueue("test.record", {"key": "k", "tag": "a"})
    high = service.enqueue("test.record", {"key": "k", "tag": "b"}, priority=Priority.HIGH)
    low = service.enqueue("test.record", {"key": "k", "tag": "c"}, priority=10)
    assert [_job(conn, j).origin for j in (normal, high, low)] == [
        "testq",
        "testq:high",
        "testq:low",
    ]
    job = _job(conn, normal)
    assert job.retries_left == 3
    assert job.retry_intervals == [1, 2, 4]
    assert job.failure_ttl == 7 * 24 * 3600
    assert job.description == "test.record"  # never a repr of the payload
    with pytest.raises(JobError, match="priority must be"):
        service.enqueue("test.record", {"key": "k", "tag": "a"}, priority=3)


def test_enqueue_with_an_explicit_job_id_refuses_a_duplicate(service: JobService) -> None:
    assert service.enqueue(plain_add, [1, 2], queue="testq", job_id="order-42") == "order-42"
    with pytest.raises(JobError, match="already exists"):
        service.enqueue(plain_add, [3], queue="testq", job_id="order-42")


def test_high_priority_job_enqueued_after_100_normal_ones_runs_first(
    service: JobService, conn: redis.Redis
) -> None:
    service.enqueue("test.record", Mark(key="order", tag="low"), priority=Priority.LOW)
    for n in range(100):
        service.enqueue("test.record", Mark(key="order", tag=f"normal-{n}"))
    service.enqueue("test.record", Mark(key="order", tag="high"), priority=Priority.HIGH)
    run_burst(conn)
    order = [tag.decode() for tag in conn.lrange("order", 0, -1)]
    assert order[0] == "high"
    assert order[1:101] == [f"normal-{n}" for n in range(100)]
    assert order[-1] == "low"


def test_delay_puts_the_job_in_the_scheduled_registry_never_early(
    service: JobService, conn: redis.Redis
) -> None:
    before = time.time()
    job_id = service.enqueue("test.record", Mark(key="k", tag="later"), delay=timedelta(seconds=5))
    registry = ScheduledJobRegistry("testq", connection=conn, serializer=JobSerializer)
    score = conn.zscore(registry.key, job_id)
    assert score is not None
    # Whole seconds (RQ's resolution), rounded up: at least 5 s, at most 6 s away.
    assert before + 5 <= score <= time.time() + 6
    assert service.stats().queue("testq").scheduled == 1
    with pytest.raises(JobError, match="delay must be"):
        service.enqueue("test.record", Mark(key="k", tag="x"), delay=-1)


@pytest.mark.slow
def test_delayed_job_runs_after_its_delay_with_a_real_worker(
    service: JobService, conn: redis.Redis, start_worker: object
) -> None:
    start_worker()  # type: ignore[operator]
    deadline = time.monotonic() + 15
    while service.stats().queue("testq").workers == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    enqueued = time.time()
    service.enqueue("test.record", Mark(key="delayed", tag="x"), delay=1.5)
    deadline = time.monotonic() + 10
    while not conn.llen("delayed") and time.monotonic() < deadline:
        time.sleep(0.02)
    ran = time.time()
    assert conn.llen("delayed") == 1
    assert 1.5 <= ran - enqueued < 4.5


def test_retry_schedule_is_1_2_4_seconds(service: JobService, conn: redis.Redis) -> None:
    job_id = service.enqueue("test.flaky", {"key": "attempts"})
    scheduled = ScheduledJobRegistry("testq", connection=conn, serializer=JobSerializer)
    delays = []
    for _ in range(3):
        run_burst(conn)  # the attempt fails; RQ schedules the retry
        failed_at = float(conn.lrange("attempts", -1, -1)[0])
        score = conn.zscore(scheduled.key, job_id)
        assert score is not None
        delays.append(score - failed_at)
        scheduled.requeue(job_id)  # stand in for the scheduler when the time has come
    # RQ stores whole seconds (truncated), so each delay is within a second below target.
    assert [round(d + 0.5) for d in delays] == [1, 2, 4]
    assert all(target - 1 < d <= target for d, target in zip(delays, [1, 2, 4], strict=True))
    run_burst(conn)  # the 4th and last attempt fails for good
    assert conn.llen("attempts") == 4
    page = service.failed_jobs("testq")
    assert page.total == 1
    assert page.jobs[0].attempts == 4
    assert conn.zscore(scheduled.key, job_id) is None


def _fail_jobs(service: JobService, conn: redis.Redis, count: int) -> list[str]:
    ids = [
        service.enqueue("test.flaky", {"key": f"f{n}"}, retries=0, priority=p)
        for n, p in zip(range(count), [1, 5, 10] * count, strict=False)
    ]
    run_burst(conn)
    return ids


def test_failed_jobs_are_listed_newest_first_with_pagination(
    service: JobService, conn: redis.Redis
) -> None:
    ids = _fail_jobs(service, conn, 5)
    first = service.failed_jobs("testq", limit=3)
    assert first.total == 5
    assert len(first.jobs) == 3
    second = service.failed_jobs("testq", offset=3, limit=3)
    assert len(second.jobs) == 2
    listed = [job.id for job in first.jobs + second.jobs]
    assert sorted(listed) == sorted(ids)
    job = first.jobs[0]
    assert job.processor == "test.flaky"
    assert job.function == "tests.jobs._processors.flaky"
    assert job.error == "RuntimeError: attempt 1 failed on purpose"
    assert "Traceback" in job.traceback or "raise RuntimeError" in job.traceback
    assert job.attempts == 1
    assert job.failed_at is not None
    assert abs(job.failed_at.timestamp() - time.time()) < 30
    # Kept for FAILED_JOB_TTL (7 days), not RQ's one year.
    registry = FailedJobRegistry(job.queue, connection=conn, serializer=JobSerializer)
    expires = conn.zscore(registry.key, job.id)
    assert expires is not None
    assert abs(expires - time.time() - 7 * 24 * 3600) < 30
    assert conn.ttl(f"rq:job:{job.id}") > 6 * 24 * 3600


def test_failed_job_can_be_retried_one_by_one_and_succeed(
    service: JobService, conn: redis.Redis
) -> None:
    job_id = service.enqueue("test.flaky", {"key": "once", "fail_times": 1}, retries=0)
    run_burst(conn)
    assert service.failed_jobs("testq").total == 1
    service.retry_failed(job_id)
    assert service.job_status(job_id) == "queued"
    run_burst(conn)
    assert service.job_status(job_id) == "finished"
    assert service.failed_jobs("testq").total == 0
    with pytest.raises(JobError, match="not in the failed list"):
        service.retry_failed(job_id)
    with pytest.raises(JobError, match="no job with id"):
        service.retry_failed("missing")


def test_all_failed_jobs_can_be_retried(service: JobService, conn: redis.Redis) -> None:
    _fail_jobs(service, conn, 6)
    assert service.retry_all_failed(["testq"]) == 6
    stats = service.stats().queue("testq")
    assert (stats.failed, stats.waiting) == (0, 6)
    run_burst(conn)  # they fail again: back in the failed list
    assert service.stats().queue("testq").failed == 6


def test_failed_job_can_be_deleted(service: JobService, conn: redis.Redis) -> None:
    keep, drop = _fail_jobs(service, conn, 2)
    service.delete_failed(drop)
    page = service.failed_jobs("testq")
    assert [job.id for job in page.jobs] == [keep]
    assert not conn.exists(f"rq:job:{drop}")
    with pytest.raises(JobError):
        service.delete_failed(drop)


def test_completed_jobs_are_counted_and_cleared(service: JobService, conn: redis.Redis) -> None:
    ids = [service.enqueue(plain_add, [n, 1], queue="testq") for n in range(4)]
    run_burst(conn)
    assert _job(conn, ids[0]).return_value() == 1
    assert service.completed_count(["testq"]) == 4
    assert service.clear_completed(["testq"]) == 4
    assert service.completed_count(["testq"]) == 0
    assert not any(conn.exists(f"rq:job:{job_id}") for job_id in ids)


def test_stats_count_10000_jobs_without_loading_them(
    service: JobService, conn: redis.Redis
) -> None:
    queue = Queue("testq", connection=conn, serializer=JobSerializer)
    with conn.pipeline() as pipe:
        queue.enqueue_many(
            [Queue.prepare_data(plain_add, ([n],)) for n in range(10_000)], pipeline=pipe
        )
        pipe.execute()
    # 10 000 failed entries too: ids only, their hashes never exist, so loading would fail.
    far = time.time() + 3600
    conn.zadd("rq:failed:testq:low", {f"ghost-{n}": far for n in range(10_000)})
    conn.config_resetstat()
    stats = service.stats().queue("testq")
    assert stats.waiting == 10_000
    assert stats.waiting_by_priority == {"high": 0, "normal": 10_000, "low": 0}
    assert stats.failed == 10_000
    commands = conn.info("commandstats")
    called = {name.removeprefix("cmdstat_"): value["calls"] for name, value in commands.items()}
    assert not {"hgetall", "hget", "hmget", "lrange", "zrange"} & set(called)
    assert sum(called.values()) < 40


def test_health_is_degraded_without_workers_or_with_recent_failures(
    service: JobService, conn: redis.Redis
) -> None:
    service.enqueue("test.record", Mark(key="k", tag="t"))
    stats = service.stats().queue("testq")
    assert stats.status == "degraded"
    assert stats.reason == "no worker listens on 'testq' (1 waiting, 0 scheduled)"
    _fail_jobs(service, conn, 1)
    stats = service.stats().queue("testq")
    assert stats.failed_recent == 1
    assert "1 job(s) failed in the last 300 s" in stats.reason


@pytest.mark.slow
def test_health_counts_live_workers(
    service: JobService, conn: redis.Redis, start_worker: object
) -> None:
    start_worker()  # type: ignore[operator]
    deadline = time.monotonic() + 10
    while service.stats().queue("testq").workers == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = service.stats().queue("testq")
    assert (stats.workers, stats.status) == (1, "healthy")


def test_from_env_reads_the_job_settings(private_redis: PrivateRedis) -> None:
    service = JobService.from_env(
        {
            "REDIS_URL": private_redis.url,
            "JOB_RETRY_ATTEMPTS": "5",
            "JOB_RETRY_BACKOFF": "fixed",
            "JOB_RETRY_BASE_DELAY": "2",
            "FAILED_JOB_TTL": "60",
        }
    )
    job = _job(service.connection, service.enqueue("test.record", Mark(key="k", tag="t")))
    assert (job.retries_left, job.retry_intervals) == (5, [2, 2, 2, 2, 2])
    assert job.failure_ttl == 60
    service.connection.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port whose connects hang: its listener's accept queue is full, so the
    kernel drops further SYNs (like a firewalled or frozen host)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            yield port


def test_service_from_settings_fails_fast_on_a_host_that_never_answers(silent_port: int) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{silent_port}/0", redis_connect_timeout=0.3)
    service = JobService.from_settings(settings)
    started = time.monotonic()
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
        service.stats()
    assert time.monotonic() - started < 3  # the connect timeout (with redis-py's retries)


def test_stats_is_one_struct_over_the_services_queues(conn: redis.Redis) -> None:
    service = JobService(conn, queues=["testq", "email", "testq"])
    service.enqueue("test.record", Mark(key="k", tag="a"), queue="testq")
    stats = service.stats()
    assert isinstance(stats, JobStats)
    assert [q.queue for q in stats.queues] == ["testq", "email"]  # once each, in order
    assert stats.queue("testq").waiting == 1 and stats.queue("email").waiting == 0
    with pytest.raises(KeyError):
        stats.queue("analytics")
    with pytest.raises(ConfigError):
        JobService(conn, queues=[])


def test_reset_stats_leaves_rqs_registries(service: JobService, conn: redis.Redis) -> None:
    service.enqueue("test.record", Mark(key="k", tag="a"), queue="testq")
    service.reset_stats()  # perfkit counts nothing itself: RQ's queue is what it reports
    assert service.stats().queue("testq").waiting == 1
