"""The doors a forged job could still open, tried with real ``perfkit worker`` processes.

Every name RQ resolves (the job's function, its success/failure/stopped callbacks, its
dependents) passes the allowlist, whichever path resolves it: running the job, failing
it, or a worker's clean-up of a job abandoned by a dead worker.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from rq import Callback, Retry
from rq.job import JobStatus
from rq.webhook import Webhook

from perfkit.jobs import JobService
from tests.jobs._processors import Mark, Picky
from tests.jobs.conftest import StartWorker, wait_for

FORBIDDEN = "tests.jobs._forbidden.touch"


@pytest.fixture
def mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where tests.jobs._forbidden leaves its marks, in the workers started after this."""
    path = tmp_path / "forbidden"
    monkeypatch.setenv("PERFKIT_TEST_FORBIDDEN_MARK", str(path))
    return path


def _opened(mark: Path) -> list[str]:
    return [kind for kind in ("imported", "called") if mark.with_suffix(f".{kind}").exists()]


def _abandon(conn: redis.Redis, retries: int, **callbacks: Callback) -> str:
    """Forge a started job of an allowed processor whose worker died: its started-registry
    entry (``rq:wip:<queue>``) has expired, so the next clean-up handles it."""
    queue = JobService(conn).queue("testq")
    job = queue.create_job(
        "tests.jobs._processors.record",
        args=(Mark(key="ran", tag="x"),),
        retry=Retry(max=retries, interval=[0] * retries) if retries else None,
        **callbacks,
    )
    job.set_status(JobStatus.STARTED, pipeline=None)
    job.save()
    conn.zadd(f"rq:wip:{queue.name}", {f"{job.id}:forged-execution": time.time() - 60})
    return str(job.id)


@pytest.mark.parametrize("retries", [0, 2], ids=["failed", "retried"])
def test_an_abandoned_jobs_forged_failure_callback_is_never_imported(
    conn: redis.Redis, start_worker: StartWorker, mark: Path, retries: int
) -> None:
    job_id = _abandon(conn, retries, on_failure=Callback(FORBIDDEN))
    worker = start_worker()
    service = JobService(conn, queues=("testq",))
    wait_for(
        lambda: conn.zcard("rq:wip:testq") == 0 and service.job_status(job_id) == "failed",
        30,
        "the clean-up and the refusal of the abandoned job",
    )
    worker.terminate()
    worker.wait(10)
    assert _opened(mark) == []
    failed = service.failed_jobs("testq").jobs
    assert [job.id for job in failed] == [job_id]


@pytest.fixture
def listener() -> Iterator[list[str]]:
    """An HTTP server on loopback; yields the paths it was asked for."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            asked.append(self.path)
            self.send_response(204)
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    asked.append(f"http://127.0.0.1:{server.server_address[1]}")
    yield asked
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("abandoned", [False, True], ids=["run", "abandoned"])
def test_a_forged_jobs_webhook_is_never_sent(
    conn: redis.Redis, start_worker: StartWorker, listener: list[str], abandoned: bool
) -> None:
    # RQ 3 POSTs a failed job's traceback to its webhooks' URLs, read from Redis.
    base = listener.pop()
    hooks = [
        Webhook(f"{base}/{status}", status, method="POST") for status in ("finished", "failed")
    ]
    service = JobService(conn, queues=("testq",))
    if abandoned:
        job_id = _abandon(conn, 0, webhooks=hooks)
    else:
        job = service.queue("testq").enqueue(
            "tests.jobs._processors.record", Mark(key="ran", tag="x"), webhooks=hooks
        )
        job_id = str(job.id)
    worker = start_worker()
    wait_for(lambda: service.job_status(job_id) == "failed", 30, "the job to fail")
    worker.terminate()
    worker.wait(10)
    assert listener == []
    assert conn.llen("ran") == 0
    if not abandoned:
        assert "webhook(s); perfkit workers send none" in service.failed_jobs("testq").jobs[0].error


def test_a_forged_dependent_is_refused_when_its_parent_finishes(
    conn: redis.Redis, start_worker: StartWorker, mark: Path
) -> None:
    queue = JobService(conn).queue("testq")
    parent = queue.enqueue("tests.jobs._processors.record", Mark(key="ran", tag="parent"))
    dependent = queue.enqueue(FORBIDDEN, depends_on=parent)
    assert start_worker("--burst").wait(30) == 0
    assert conn.lrange("ran", 0, -1) == [b"parent"]
    assert dependent.get_status(refresh=True) == JobStatus.FAILED
    assert _opened(mark) == []


def test_a_forged_delayed_job_is_refused_when_the_scheduler_enqueues_it(
    conn: redis.Redis, start_worker: StartWorker, mark: Path
) -> None:
    job = JobService(conn).queue("testq").enqueue_in(timedelta(seconds=1), FORBIDDEN)
    worker = start_worker()
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.FAILED, 30, "the refusal")
    worker.terminate()
    worker.wait(10)
    assert _opened(mark) == []


# -- a call that cannot bind ------------------------------------------------------------


@pytest.mark.parametrize(
    ("func", "args", "kwargs", "reason"),
    [
        ("tests.jobs._processors.plain_add", ([1], [2]), {}, "too many positional arguments"),
        ("tests.jobs._processors.plain_add", (), {"numbers": [1], "more": 2}, "unexpected"),
        ("tests.jobs._processors.record", (), {}, "missing a required argument: 'payload'"),
    ],
    ids=["too-many", "unknown-keyword", "processor-missing"],
)
def test_a_call_that_cannot_bind_fails_at_once(
    conn: redis.Redis,
    start_worker: StartWorker,
    func: str,
    args: tuple[object, ...],
    kwargs: dict[str, object],
    reason: str,
) -> None:
    queue = JobService(conn).queue("testq")
    queue.enqueue_call(func, args=args, kwargs=kwargs, retry=Retry(max=3, interval=[0, 0, 0]))
    assert start_worker("--burst").wait(30) == 0
    page = JobService(conn).failed_jobs("testq")
    assert page.total == 1
    failed = page.jobs[0]
    assert failed.attempts == 1  # no retries, though it had 3
    assert "PermanentJobError" in failed.error
    assert f"do not fit {func}(" in failed.error and reason in failed.error


def test_a_type_error_inside_the_body_is_retried(
    conn: redis.Redis, start_worker: StartWorker
) -> None:
    service = JobService(conn, queues=("testq",), retry_base_delay=0)
    service.enqueue("test.picky", Picky(key="tries", error="TypeError"), retries=2)
    assert start_worker("--burst").wait(30) == 0
    assert conn.get("tries") == b"3"
    failed = service.failed_jobs("testq").jobs[0]
    assert failed.attempts == 3 and "TypeError: TypeError on purpose" in failed.error
