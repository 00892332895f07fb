"""Progress reported by a running job, read by anyone who holds its id.

::

    @processor("reports.build", queue="reports")
    def build(payload: Build) -> None:
        for done, part in enumerate(parts, 1):
            ...
            report_progress(done / len(parts), f"part {done} of {len(parts)}")

The job being run is held in a context variable (:func:`running`), so an async runner
that runs many jobs at once on one event loop gives each task its own; a sync worker
sets it around each job. :func:`report_progress` stores the fraction and message in the
job's meta (``perfkit.progress``, one HSET); :meth:`JobService.job_progress
<perfkit.jobs.JobService.job_progress>`, the admin ``jobs`` route (its ``running``
jobs) and ``perfkit jobs status JOB_ID`` show it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import msgspec
from rq import get_current_job
from rq.job import Job

from perfkit._errors import JobArgumentError, JobError

__all__ = [
    "META_KEY",
    "JobProgress",
    "RunningJob",
    "current_job",
    "progress_of",
    "report_progress",
    "running",
]

# Where the progress lives in the job's meta.
META_KEY = "perfkit.progress"
# A message is a status line, not a log: longer ones are cut.
MESSAGE_LENGTH = 200

_current: ContextVar[Job | None] = ContextVar("perfkit_current_job", default=None)


class JobProgress(msgspec.Struct, frozen=True, kw_only=True):
    """The last progress a job reported: ``fraction`` from 0 to 1, a ``message``, and
    when (``at``, UTC)."""

    fraction: float
    message: str
    at: datetime


class RunningJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job a worker runs now, with the progress it last reported (None: none yet)."""

    id: str
    queue: str
    function: str | None
    processor: str | None
    started_at: datetime | None
    progress: JobProgress | None


@contextmanager
def running(job: Job) -> Iterator[None]:
    """Make ``job`` the current job (:func:`current_job`) of this context while it runs."""
    token = _current.set(job)
    try:
        yield
    finally:
        _current.reset(token)


def current_job() -> Job | None:
    """The job this code runs in: the context's (:func:`running`), else RQ's, else None."""
    job = _current.get()
    return job if job is not None else get_current_job()


def report_progress(fraction: float, message: str = "") -> None:
    """Record that the current job is ``fraction`` (0 to 1) done, with ``message``.

    Raises :class:`~perfkit.JobArgumentError` for a fraction outside 0..1 and
    :class:`~perfkit.JobError` outside a job."""
    if not isinstance(fraction, int | float) or not 0 <= fraction <= 1 or math.isnan(fraction):
        raise JobArgumentError(f"report_progress: fraction must be from 0 to 1, got {fraction!r}")
    job = current_job()
    if job is None:
        raise JobError("report_progress() is called inside a job run by a worker, not outside")
    job.meta[META_KEY] = [float(fraction), str(message)[:MESSAGE_LENGTH], time.time()]
    job.save_meta()  # type: ignore[no-untyped-call]


def progress_of(meta: dict[str, Any] | None) -> JobProgress | None:
    """The progress stored in a job's ``meta``, if it reported any (and it reads)."""
    stored = (meta or {}).get(META_KEY)
    try:
        fraction, message, at = stored  # type: ignore[misc]
        return JobProgress(
            fraction=float(fraction), message=str(message), at=datetime.fromtimestamp(at, UTC)
        )
    except (TypeError, ValueError, OverflowError, OSError):
        return None
