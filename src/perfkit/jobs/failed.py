"""What perfkit reports about a failed job, and the page it comes in."""

from __future__ import annotations

from datetime import datetime

import msgspec
from rq.job import Job
from rq.results import Result

__all__ = ["FailedJob", "FailedJobsPage", "failed_job"]

# Lines of traceback kept in a listing: enough for the raising frame and the error.
TRACEBACK_LINES = 8


class FailedJob(msgspec.Struct, frozen=True, kw_only=True):
    """One failed job: ``error`` is the last traceback line, ``traceback`` its last lines.

    ``attempts`` counts executions (the first run plus retries used).
    """

    id: str
    queue: str
    function: str | None
    processor: str | None
    error: str
    traceback: str
    failed_at: datetime | None
    attempts: int


class FailedJobsPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of failed jobs, newest first; ``total`` counts every failed job of the queue
    (``None``: of the several queues the page is across)."""

    queue: str | None
    total: int
    offset: int
    limit: int
    jobs: list[FailedJob]


def failed_job(job: Job, result: Result | None, failed_at: datetime | None) -> FailedJob:
    """Summarize ``job`` (from a failed registry) and its latest ``result`` for a listing."""
    text = ""
    if result is not None and result.type == Result.Type.FAILED:
        text = (result.exc_string or "").rstrip()
        failed_at = result.created_at
    lines = text.splitlines()
    error = lines[-1] if lines else "(no error recorded)"
    # Retries used: how many of its intervals RQ has consumed (JobService stores one
    # interval per retry, so the list's length is the number of retries allowed).
    allowed = len(job.retry_intervals or [])
    left = job.retries_left if isinstance(job.retries_left, int) else allowed
    try:
        function = job.func_name
    except Exception:  # data written by something else, unreadable here
        function = None
    # JobService describes a processor job by the processor's name, a plain one by its
    # path; RQ's own descriptions are call strings ("f(1, 2)").
    description = job.description or ""
    processor = description if description != function and "(" not in description else None
    return FailedJob(
        id=job.id,
        queue=job.origin,
        function=function,
        processor=processor,
        error=error,
        traceback="\n".join(lines[-TRACEBACK_LINES:]),
        failed_at=failed_at,
        attempts=1 + max(allowed - left, 0),
    )
