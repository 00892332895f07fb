"""JobService.enqueue(depends_on=...): RQ's dependencies, run by a real perfkit worker."""

from __future__ import annotations

import pytest
import redis

from perfkit import JobArgumentError
from perfkit.jobs import JobService
from tests.jobs._processors import Flaky, Mark
from tests.jobs.conftest import StartWorker


def test_depends_on_runs_the_dependent_after_its_parents_only(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    service = JobService(conn, queues=("testq",), retry_attempts=0)
    first = service.enqueue("test.record", Mark(key="order", tag="first"))
    failing = service.enqueue("test.flaky", Flaky(key="f"))
    after = service.enqueue("test.record", Mark(key="order", tag="after"), depends_on=first)
    never = service.enqueue("test.record", Mark(key="order", tag="never"), depends_on=[failing])
    assert service.job_status(after) == "deferred"
    assert start_worker("--burst").wait(30) == 0
    assert conn.lrange("order", 0, -1) == [b"first", b"after"]
    assert service.job_status(never) == "deferred"  # its parent failed
    with pytest.raises(JobArgumentError, match="depends_on= cannot be combined"):
        service.enqueue("test.record", Mark(key="k", tag="t"), depends_on=first, delay=5)
