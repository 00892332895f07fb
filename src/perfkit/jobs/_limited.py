"""The worker's side of limits (:mod:`perfkit.jobs.limits`): where RQ's worker takes, runs
and loses a job, the job's slots are taken, extended and freed.

- taking: a job over one of its limits is parked (out of its queue) and the worker takes the
  next one, so a waiting job holds no worker;
- heartbeat: the running job's Concurrency leases are extended with its started-registry
  entry (two heartbeat intervals);
- end, whatever the outcome (success, failure, retry, a killed work horse), before RQ
  records it: its slots are freed and handed to the oldest job parked on them, which goes
  back to its queue;
- a dead worker: its job's leases expire, and RQ's recovery of the abandoned job (an
  exception handler here) frees them at once; either way within the recovery bound;
- maintenance (every worker, every maintenance interval): the wake-up pass, a fallback for
  the scheduler's (:class:`~perfkit.jobs.scheduler.Scheduler`), which is timed to the next
  wake.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import redis
import structlog
from rq.exceptions import AbandonedJobError
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue

from perfkit.jobs import _gate

__all__ = ["LimitHooks"]

log = structlog.get_logger("perfkit.jobs")

# Longest pause between two tries of a limit's check while Redis is unavailable.
_MAX_WAIT = 30.0


class LimitHooks:
    """Mixin for an RQ worker class: the limits' calls at RQ's take, heartbeat, end and
    maintenance steps."""

    connection: redis.Redis

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.push_exc_handler(self._release_abandoned)  # type: ignore[attr-defined]

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """RQ's, taking the next job until one is within its limits (the others are parked)."""
        while True:
            taken: tuple[Job, Queue] | None = super().dequeue_job_and_maintain_ttl(  # type: ignore[misc]
                timeout, max_idle_time
            )
            if taken is None:
                return None
            job = taken[0]
            if self._acquire(job):
                return taken
            log.debug("job parked on its limit", job_id=job.id)

    def _acquire(self, job: Job) -> bool:
        # The job is off its queue and in hand: Redis failing here is waited out (as RQ's
        # dequeue waits it out), not a reason to drop the job or to run it over its limit.
        wait = 1.0
        while True:
            try:
                return _gate.acquire(self.connection, job, self._lease(job))
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("limits: Redis unavailable, retrying", job_id=job.id, error=str(exc))
                time.sleep(wait)
                wait = min(2 * wait, _MAX_WAIT)

    def _lease(self, job: Job) -> float:
        return float(self.get_heartbeat_ttl(job))  # type: ignore[attr-defined]

    # The job's end: its slots are freed *before* RQ's step, which may put it back in its
    # queue (a retry): freed after, they would be taken from the retry already running.
    # Where the job ran: the worker, or the work horse of a forking worker (the worker when
    # the horse was killed).

    def handle_job_success(self, job: Job, *args: Any, **kwargs: Any) -> None:
        """The job's slots freed, then RQ's."""
        self._free(job)
        super().handle_job_success(job, *args, **kwargs)  # type: ignore[misc]

    def handle_job_failure(self, job: Job, *args: Any, **kwargs: Any) -> None:
        """The job's slots freed, then RQ's (which may retry it)."""
        self._free(job)
        super().handle_job_failure(job, *args, **kwargs)  # type: ignore[misc]

    def handle_job_retry(self, job: Job, *args: Any, **kwargs: Any) -> None:
        """The job's slots freed, then RQ's (a job that returned ``rq.Retry``)."""
        self._free(job)
        super().handle_job_retry(job, *args, **kwargs)  # type: ignore[misc]

    def _free(self, job: Job) -> None:
        # A failure here must not stop the worker: the leases expire without it.
        try:
            _gate.release(self.connection, job)
        except redis.RedisError as exc:
            log.warning("limits: could not free the job's slots", job_id=job.id, error=str(exc))

    def maintain_heartbeats(self, job: Job, execution: Execution) -> None:
        """RQ's, and the job's Concurrency leases are extended as long."""
        super().maintain_heartbeats(job, execution)  # type: ignore[misc]
        _gate.refresh(self.connection, job, self._lease(job))

    def run_maintenance_tasks(self) -> None:
        """RQ's, then the wake-up pass of parked jobs."""
        super().run_maintenance_tasks()  # type: ignore[misc]
        _gate.release_due(self.connection)

    def _release_abandoned(
        self,
        job: Job,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        # RQ's recovery found the job of a dead worker: its slots go now, not at lease expiry.
        if exc_type is AbandonedJobError:
            self._free(job)
        return True
