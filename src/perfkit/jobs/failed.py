"""What perfkit reports about a failed job, and the page it comes in.

A failed job may not be readable: its hash or its failure record written by something
else (not UTF-8, a call that does not decode). It is listed as unreadable
(:func:`unreadable_job`) among the others, never breaking the listing, and can be deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import redis
from rq.exceptions import DeserializationError
from rq.job import Job
from rq.results import Result

from perfkit.jobs.serializer import JobSerializer

__all__ = [
    "UNREADABLE",
    "FailedJob",
    "FailedJobsPage",
    "failed_job",
    "read_job",
    "read_result",
    "unreadable_job",
]

# How an unreadable job's error begins (and job_status's answer for it).
UNREADABLE = "unreadable"

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


def processor_name(job: Job) -> str | None:
    """The processor a job runs, by name (None: a plain function)."""
    # JobService describes a processor job by the processor's name, a plain one by its
    # path; RQ's own descriptions are call strings ("f(1, 2)").
    description = job.description or ""
    return description if description != job.func_name and "(" not in description else None


def failed_job(job: Job, result: Result | str | None, failed_at: datetime | None) -> FailedJob:
    """Summarize ``job`` (from a failed registry) and its latest ``result`` (or why it
    cannot be read, see :func:`read_result`) for a listing."""
    text = ""
    if isinstance(result, Result) and result.type == Result.Type.FAILED:
        text = (result.exc_string or "").rstrip()
        failed_at = result.created_at
    lines = text.splitlines()
    error = lines[-1] if lines else "(no error recorded)"
    if isinstance(result, str):
        error = f"({UNREADABLE}: {result})"
    # Retries used: how many of its intervals RQ has consumed (JobService stores one
    # interval per retry, so the list's length is the number of retries allowed).
    allowed = len(job.retry_intervals or [])
    left = job.retries_left if isinstance(job.retries_left, int) else allowed
    return FailedJob(
        id=job.id,
        queue=job.origin,
        function=job.func_name,
        processor=processor_name(job),
        error=error,
        traceback="\n".join(lines[-TRACEBACK_LINES:]),
        failed_at=failed_at,
        attempts=1 + max(allowed - left, 0),
    )


def _why(exc: Exception) -> str:
    # Names what is wrong, never the bytes (which may hold anything).
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    if isinstance(exc, DeserializationError):
        return "its call does not decode"
    return type(exc).__name__


def read_job(job_id: str, raw: dict[Any, Any], connection: redis.Redis) -> Job | str:
    """``job_id``'s job from its hash (``HGETALL``), or why it cannot be read."""
    job = Job(job_id, connection=connection, serializer=JobSerializer)
    try:
        job.restore(raw)
        job.func_name  # noqa: B018  (decodes the call: one that cannot be read shows here)
    except Exception as exc:  # anything written by something else
        return _why(exc)
    return job


def read_result(job_id: str, stream: list[Any], connection: redis.Redis) -> Result | str | None:
    """The latest result of ``job_id`` from its stream's last entry (``XREVRANGE ...
    COUNT 1``), None when there is none, or why it cannot be read."""
    if not stream:
        return None
    result_id, fields = stream[0]
    try:
        return Result.restore(
            job_id,
            result_id.decode() if isinstance(result_id, bytes) else str(result_id),
            fields,
            connection=connection,
            serializer=JobSerializer,
        )
    except Exception as exc:  # a failure record written by something else
        return f"its failure record is {_why(exc)}"


def unreadable_job(job_id: str, queue: str, why: str, failed_at: datetime | None) -> FailedJob:
    """A failed job that cannot be read, as a listing shows it (delete it to clear it)."""
    return FailedJob(
        id=job_id,
        queue=queue,
        function=None,
        processor=None,
        error=f"({UNREADABLE}: {why}; delete it)",
        traceback="",
        failed_at=failed_at,
        attempts=1,
    )
