"""perfkit.jobs: background jobs on RQ (see docs/jobs.md).

:class:`JobService` enqueues typed jobs (named processors with msgspec payloads) with
retries, priorities and delays, and reports queue statistics and failed jobs;
:func:`make_worker` (or ``perfkit worker``) runs them, ``async def`` ones many at once
(``--concurrency``); :meth:`JobService.cancel` stops one. Job data is JSON, never pickle.
"""

from perfkit._errors import PermanentJobError
from perfkit.jobs import builtins
from perfkit.jobs._metrics import JobMetrics, record_outcome
from perfkit.jobs.allowlist import allow_jobs, allowed_jobs
from perfkit.jobs.asyncrunner import AsyncJobWorker

# The built-in processors (mail, notifications, export, cache warming) live in
# perfkit.jobs.builtins: the jobs core does not import the cache or the queries. Their public
# names are exported here too, as builtins.__all__ lists them.
from perfkit.jobs.builtins import *  # noqa: F403
from perfkit.jobs.cancel import check_cancelled
from perfkit.jobs.failed import FailedJob, FailedJobsPage
from perfkit.jobs.limits import Concurrency, Rate
from perfkit.jobs.periodic import (
    Periodic,
    PeriodicRun,
    PeriodicScheduler,
    periodic,
    periodic_runs,
    schedule,
)
from perfkit.jobs.processor import Processor, get_processor, processor, processors
from perfkit.jobs.progress import JobProgress, RunningJob, report_progress
from perfkit.jobs.queues import Priority, priority_queue, worker_queue_names
from perfkit.jobs.retry import retry_intervals
from perfkit.jobs.serializer import JobSerializer
from perfkit.jobs.service import JobService
from perfkit.jobs.stats import JobStats, QueueStats
from perfkit.jobs.worker import ForkingJobWorker, JobWorker, make_worker

__all__ = [
    "AsyncJobWorker",
    "Concurrency",
    "FailedJob",
    "FailedJobsPage",
    "ForkingJobWorker",
    "JobMetrics",
    "JobProgress",
    "JobSerializer",
    "JobService",
    "JobStats",
    "JobWorker",
    "Periodic",
    "PeriodicRun",
    "PeriodicScheduler",
    "PermanentJobError",
    "Priority",
    "Processor",
    "QueueStats",
    "Rate",
    "RunningJob",
    "allow_jobs",
    "allowed_jobs",
    "check_cancelled",
    "get_processor",
    "make_worker",
    "periodic",
    "periodic_runs",
    "priority_queue",
    "processor",
    "processors",
    "record_outcome",
    "report_progress",
    "retry_intervals",
    "schedule",
    "worker_queue_names",
]
__all__ += builtins.__all__
__all__.sort()  # sorted, as every package's (tests/test_exported_members.py)
