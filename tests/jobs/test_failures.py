"""Permanent failures fail at once; transient ones are retried with the backoff."""

from __future__ import annotations

import math

import pytest
import redis
from rq import Retry

from perfkit import PayloadError, PermanentJobError, Settings
from perfkit.jobs import JobService
from perfkit.jobs.retry import retry_intervals, rq_retry
from tests.jobs._processors import Picky
from tests.jobs.conftest import StartWorker


def _only_failure(service: JobService, queue: str = "testq") -> tuple[str, int]:
    page = service.failed_jobs(queue)
    assert page.total == 1
    return page.jobs[0].error, page.jobs[0].attempts


def test_a_payload_invalid_in_the_worker_fails_at_once(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    # Written behind the validator's back: `key` must be a string.
    queue = JobService(conn).queue("testq")
    queue.enqueue("tests.jobs._processors.record", {"key": 1, "tag": "x"}, retry=Retry(max=3))
    assert start_worker("--burst").wait(30) == 0
    error, attempts = _only_failure(JobService(conn))
    assert attempts == 1
    assert "PayloadError" in error and "`$.key`" in error


def test_a_missing_email_template_fails_at_once(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    service = JobService(conn)
    service.add_email_job("user@example.com", "Order", "order-confirmation", {"orderId": "1"})
    assert start_worker("--burst", queues=("email",)).wait(30) == 0
    error, attempts = _only_failure(service, "email")
    assert attempts == 1
    assert "no email template named 'order-confirmation'" in error


def test_no_retry_on_fails_at_once_and_other_errors_are_retried(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    # Base delay 0: retries are enqueued at once, so one burst worker runs them all.
    service = JobService(conn, retry_attempts=3, retry_base_delay=0)
    service.enqueue("test.picky", Picky(key="lookup", error="LookupError"))
    service.enqueue("test.picky", Picky(key="runtime", error="RuntimeError"))
    assert start_worker("--burst").wait(60) == 0
    assert conn.get("lookup") == b"1"  # no_retry_on=LookupError
    assert conn.get("runtime") == b"4"  # the first attempt and 3 retries
    attempts = sorted(job.attempts for job in service.failed_jobs("testq").jobs)
    assert attempts == [1, 4]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_at_enqueue(service: JobService, bad: float) -> None:
    with pytest.raises(PayloadError, match=r"not allowed .* at `\$\.data\.total`"):
        service.add_notification_job("u1", "order", {"total": bad})
    with pytest.raises(PayloadError, match=r"at `\$\[0\]\[1\]`"):
        service.enqueue(math.floor, [1.0, bad], queue="testq")  # checked before the path
    notifications = JobService(service.connection, queues=["notifications"])
    assert notifications.stats().queue("notifications").waiting == 0


def test_payload_errors_are_permanent() -> None:
    assert issubclass(PayloadError, PermanentJobError)


def test_jitter_is_off_by_default_and_draws_up_to_each_delay() -> None:
    assert Settings().job_retry_jitter is False
    assert Settings.from_env({"JOB_RETRY_JITTER": "true"}).job_retry_jitter is True
    exact = rq_retry(3, "exponential", 1.0)
    assert exact is not None and exact.intervals == [1, 2, 4]
    full = retry_intervals(6, "exponential", 1.0)
    draws = [rq_retry(6, "exponential", 1.0, jitter=True) for _ in range(200)]
    for drawn in draws:
        assert drawn is not None
        assert all(0 <= got <= cap for got, cap in zip(drawn.intervals, full, strict=True))
    assert len({tuple(d.intervals) for d in draws if d is not None}) > 100
    service = JobService.from_settings(Settings(job_retry_jitter=True))
    assert service.retry_jitter is True
