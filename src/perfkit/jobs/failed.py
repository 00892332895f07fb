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
    """A page of failed jobs, newest first; ``total`` counts every failed job of the queue."""

    queue: str
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
    meta = job.meta or {}
    retries = meta.get("retries")
    left = job.retries_left
    attempts = 1 + (retries - left if isinstance(retries, int) and isinstance(left, int) else 0)
    try:
        function = job.func_name
    except Exception:  # data written by something else, unreadable here
        function = None
    return FailedJob(
        id=job.id,
        queue=job.origin,
        function=function,
        processor=meta.get("processor"),
        error=error,
        traceback="\n".join(lines[-TRACEBACK_LINES:]),
        failed_at=failed_at,
        attempts=attempts,
    )
