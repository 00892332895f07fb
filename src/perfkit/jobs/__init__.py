"""perfkit.jobs: background jobs on RQ (see docs/jobs.md).

:class:`JobService` enqueues typed jobs (named processors with msgspec payloads) with
retries, priorities and delays, and reports queue statistics and failed jobs;
:func:`make_worker` (or ``perfkit worker``) runs them, ``async def`` ones many at once
(``--concurrency``); :meth:`JobService.cancel` stops one. Job data is JSON, never pickle.

This package exports what an application writes jobs with; the rest is in the public
submodules: the limits (:mod:`perfkit.jobs.limits`), the periodic scheduler
(:mod:`perfkit.jobs.periodic`), the processor registry (:mod:`perfkit.jobs.processor`),
the worker classes (:mod:`perfkit.jobs.worker`, :mod:`perfkit.jobs.asyncrunner`), failed
jobs and progress (:mod:`perfkit.jobs.failed`, :mod:`perfkit.jobs.progress`), queue names,
retries and the serializer, and the built-in processors (:mod:`perfkit.jobs.builtins`).
"""

from perfkit._errors import PermanentJobError

# Imported for their registration: the built-in processors (email.send, notification.send,
# data.export, cache.warm) are known by name as soon as perfkit.jobs is, as
# JobService.add_email_job() expects. The jobs core does not import them (nor the cache or
# the queries they use); their names are exported by perfkit.jobs.builtins.
from perfkit.jobs import builtins  # noqa: F401
from perfkit.jobs._metrics import JobMetrics
from perfkit.jobs.allowlist import allow_jobs
from perfkit.jobs.cancel import check_cancelled
from perfkit.jobs.periodic import periodic
from perfkit.jobs.processor import processor
from perfkit.jobs.progress import report_progress
from perfkit.jobs.queues import Priority
from perfkit.jobs.service import JobService
from perfkit.jobs.stats import JobStats, QueueStats
from perfkit.jobs.worker import make_worker

__all__ = [
    "JobMetrics",
    "JobService",
    "JobStats",
    "PermanentJobError",
    "Priority",
    "QueueStats",
    "allow_jobs",
    "check_cancelled",
    "make_worker",
    "periodic",
    "processor",
    "report_progress",
]
