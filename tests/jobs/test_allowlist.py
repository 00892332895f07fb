"""A worker runs registered processors and allowed modules' functions, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from rq import Callback, Retry

from perfkit import ConfigError
from perfkit.jobs import JobService, allow_jobs
from perfkit.jobs.allowlist import allowed_jobs
from tests.jobs._processors import Mark
from tests.jobs.conftest import StartWorker, run_burst


def _forge(conn: redis.Redis, func: str, *args: object, **options: object) -> str:
    """Write a job straight into the queue, behind JobService's back, as an intruder could."""
    queue = JobService(conn).queue("testq")
    return str(queue.enqueue(func, *args, retry=Retry(max=3, interval=[1, 2, 4]), **options).id)


# Both refusals run in-process, once per way of reading RQ's jobs (rq_internals).
def test_a_forged_job_naming_os_system_fails_at_once_and_is_never_called(
    conn: redis.Redis, rq_internals: bool, tmp_path: Path
) -> None:
    target = tmp_path / "pwned"
    job_id = _forge(conn, "os.system", f"touch {target}")
    run_burst(conn)
    assert not target.exists()
    page = JobService(conn).failed_jobs("testq")
    assert page.total == 1
    failed = page.jobs[0]
    assert failed.id == job_id
    assert failed.attempts == 1  # no retries, though it had 3
    assert "PermanentJobError" in failed.error and "'os.system'" in failed.error
    assert "refused without calling it" in failed.error


@pytest.mark.parametrize("kind", ["success", "failure", "stopped"])
def test_a_forged_callback_is_refused_and_never_called(
    conn: redis.Redis, rq_internals: bool, kind: str
) -> None:
    # Called, os.getpid would fail the job with a TypeError (it takes no arguments).
    _forge(
        conn,
        "tests.jobs._processors.record",
        Mark(key="cb", tag="x"),
        **{f"on_{kind}": Callback("os.getpid")},
    )
    run_burst(conn)
    assert conn.llen("cb") == 0
    failed = JobService(conn).failed_jobs("testq").jobs[0]
    assert f"the {kind} callback 'os.getpid'" in failed.error
    assert "TypeError" not in failed.error


def test_a_function_imported_into_an_allowed_module_is_not_allowed(
    conn: redis.Redis, start_worker: StartWorker, tmp_path: Path
) -> None:
    # tests.jobs._processors is allowed (--import) and does `import time`: a job naming
    # a function merely reachable from it is not one of its own.
    _forge(conn, "tests.jobs._processors.time.sleep", 0)
    assert start_worker("--burst").wait(30) == 0
    assert JobService(conn).failed_jobs("testq").total == 1


def test_processors_and_functions_of_imported_modules_run(
    service: JobService, conn: redis.Redis, start_worker: StartWorker
) -> None:
    from tests.jobs._processors import plain_add

    service.enqueue("test.record", Mark(key="ok", tag="a"))
    job_id = service.enqueue(plain_add, [1, 2], queue="testq")
    assert start_worker("--burst").wait(30) == 0
    assert conn.lrange("ok", 0, -1) == [b"a"]
    assert service.job_status(job_id) == "finished"


def test_allow_widens_the_list_deliberately(
    conn: redis.Redis, start_worker: StartWorker, tmp_path: Path
) -> None:
    _forge(conn, "os.getpid")
    _forge(conn, "os.getcwd")
    assert start_worker("--burst", "--allow", "os.getpid").wait(30) == 0
    failed = JobService(conn).failed_jobs("testq")
    assert [job.function for job in failed.jobs] == ["os.getcwd"]


def test_allow_jobs_rejects_what_is_not_a_dotted_path() -> None:
    with pytest.raises(ConfigError, match="'os system'"):
        allow_jobs("os system")
    assert "tests.jobs._processors" in allowed_jobs()
