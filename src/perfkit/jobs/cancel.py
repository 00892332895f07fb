"""Cancel a job: one not yet running never runs, a running one is stopped.

:meth:`JobService.cancel <perfkit.jobs.JobService.cancel>` first *marks* the job in
Redis (the field :data:`CANCEL_MARK` of its hash, which RQ neither reads nor rewrites),
then:

- a job that is not running (queued, scheduled, deferred, waiting for a retry or for a
  limit) is canceled by RQ (``Job.cancel``): status ``canceled``, off its queue or
  registry, into RQ's ``CanceledJobRegistry``;
- a running job's worker gets RQ's stop-execution command: an async job's task is
  cancelled, a forked work horse is killed, an in-process sync job stops at its next
  :func:`check_cancelled`. The worker ends it with :func:`end_canceled`.

Every start checks the mark (:meth:`AllowedJob.perform
<perfkit.jobs.allowlist.AllowedJob.perform>`), *after* the worker registered the
execution: a cancel racing a start either is seen by that check or finds the execution
and stops it, so a canceled job never runs afterwards. A job held back by something
else (a limit waiting for a slot) needs nothing more: marked, it is refused when it
finally starts (:func:`is_cancel_requested` says so earlier, for whoever holds it).

A canceled job is never retried and never counted failed.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import redis
from rq import get_current_job
from rq.command import send_command
from rq.exceptions import InvalidJobOperation
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import CanceledJobRegistry

from perfkit._errors import JobCancelledError, JobError
from perfkit.jobs import _gate
from perfkit.jobs._metrics import record_canceled

__all__ = ["CANCEL_MARK", "cancel_job", "check_cancelled", "end_canceled", "is_cancel_requested"]

# A field of the job's hash: RQ saves jobs with HSET (never rewriting the whole hash),
# so the mark survives retries and requeues, and goes when the job is deleted.
CANCEL_MARK = "perfkit_cancel"

_OVER = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED})


def is_cancel_requested(connection: redis.Redis, job_id: str) -> bool:
    """Whether :func:`cancel_job` marked the job ``job_id`` (one round trip)."""
    return bool(connection.hexists(Job.key_for(job_id), CANCEL_MARK))


def check_cancelled() -> None:
    """Raise :class:`~perfkit.JobCancelledError` if the running job was canceled.

    The cooperative stop of a sync job run in the worker's process (nothing can interrupt
    it safely from outside): call it between steps of a long job. One Redis round trip;
    outside a job it does nothing.
    """
    job = get_current_job()
    if job is not None and is_cancel_requested(job.connection, job.id):
        raise JobCancelledError(f"job {job.id} was canceled")


def cancel_job(job: Job) -> str:
    """Cancel ``job`` (see the module); returns the status it had (``queued``,
    ``started`` ...). A finished, failed or stopped job raises :class:`JobError`;
    canceling a canceled job does nothing."""
    connection = job.connection
    # The mark first: from here on every start refuses the job (see the module).
    connection.hset(job.key, CANCEL_MARK, repr(time.time()))
    status = job.get_status()
    was = str(status.value)
    if status == JobStatus.CANCELED:
        return was
    if status in _OVER:
        connection.hdel(job.key, CANCEL_MARK)
        raise JobError(f"job {job.id!r} is {status.value}: only a job not yet over can be canceled")
    if status == JobStatus.STARTED:
        # RQ's stop-execution command, sent to the job's worker by name: RQ's own sender
        # reads each execution's hash first, which fails when one just ended or expired.
        worker = job.worker_name
        for execution_id in job.execution_registry.get_execution_ids():
            if worker:
                send_command(
                    connection, worker, "stop-execution", job_id=job.id, execution_id=execution_id
                )
        return was
    # InvalidJobOperation: canceled meanwhile (another cancel, a refused start).
    with contextlib.suppress(InvalidJobOperation):
        job.cancel()
        _gate.release(connection, job)  # a slot reserved for it (limits) goes to the next
        record_canceled(job)
    return was


def end_canceled(worker: Any, job: Job, execution: Execution | None) -> None:
    """In a worker: end ``job``, stopped by a cancel, as ``canceled`` (instead of failed
    or retried): out of the started registry, into the canceled registry."""
    registry = CanceledJobRegistry(
        job.origin, connection=worker.connection, job_class=type(job), serializer=job.serializer
    )
    with worker.connection.pipeline() as pipeline:
        job.set_status(JobStatus.CANCELED, pipeline=pipeline)
        worker.cleanup_execution(job, pipeline=pipeline, execution=execution)
        registry.add(job, pipeline=pipeline)
        pipeline.execute()
