"""Native async jobs: many at once on one event loop of the worker.

:class:`AsyncJobWorker` (``perfkit worker --concurrency N``, the non-forking worker) is a
:class:`~perfkit.jobs.worker.JobWorker` whose async jobs, an ``async def`` processor or
function, run as tasks on an event loop of the worker, up to ``concurrency`` at once
(the loop has a thread of its own when ``concurrency`` > 1; with 1, the main thread runs
it, one job at a time, as it runs a sync job). Everything else is the sync worker's:

- RQ's loop dequeues; a job naming an async function (found after the allowlist's check,
  so nothing refused is imported to find out) is handed to the event loop, and the next
  job is dequeued as soon as fewer than ``concurrency`` async jobs run. A sync job runs
  in the worker's main thread as before (under RQ's SIGALRM timeout), the async ones
  going on meanwhile.
- Each task takes RQ's own steps (:func:`~perfkit._compat.rq.finish_job`,
  :func:`~perfkit._compat.rq.fail_job`): the execution in the started registry, status
  ``started``, then result, callbacks, retries with their backoff, failed or finished
  registry, exactly as for a sync job.
- Timeout: ``asyncio.timeout(job.timeout)``; past it the job fails with RQ's
  ``JobTimeoutException``, and is retried as a sync job that timed out would be.
- Heartbeats come from the worker's heartbeat thread, not from the loop (which a job
  blocking it would stall): the started-registry entries of running jobs stay fresh,
  and a SIGKILLed worker's jobs are found and run again within the same bound as sync
  ones (:mod:`perfkit.jobs.worker`).
- Cancel: RQ's stop-execution command (:func:`~perfkit.jobs.cancel.cancel_job`) cancels
  the job's task; the job ends ``canceled``.
- Stop: SIGTERM stops dequeuing and waits for the running jobs; a second signal exits
  at once (the jobs left are found as abandoned, as a sync worker's).

RQ's bookkeeping is synchronous Redis: the loop thread runs it, a few round trips per
job during which its other tasks wait.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Sequence
from typing import Any

import redis
import structlog
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.timeouts import BaseDeathPenalty, JobTimeoutException, TimerDeathPenalty
from rq.utils import now
from rq.worker import WorkerStatus

from perfkit._acompat import is_async_callable
from perfkit._compat import rq as rq_compat
from perfkit._errors import JobCancelledError
from perfkit.jobs.allowlist import AllowedJob, refusal
from perfkit.jobs.worker import JobWorker, job_run

__all__ = ["AsyncJobWorker"]

log = structlog.get_logger("perfkit.jobs")


class AsyncJobWorker(JobWorker):
    """Non-forking worker running up to ``concurrency`` async jobs at once (see the module);
    ``concurrency=1`` runs them one at a time in the main thread, like sync jobs."""

    def __init__(
        self, queues: Sequence[str], *, connection: redis.Redis, concurrency: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(queues, connection=connection, **kwargs)
        self.concurrency = concurrency
        # How many async jobs run, under the condition that says when one ends.
        self._room = threading.Condition()
        self._async_running = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        # The task of each running async job, by job id (touched on the loop only).
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def death_penalty_class(self) -> type[BaseDeathPenalty]:  # type: ignore[override]
        """RQ's SIGALRM timeout in the main thread; a timer elsewhere (the callbacks of an
        async job, run on the loop's thread, where no signal handler can be set)."""
        if threading.current_thread() is threading.main_thread():
            return JobWorker.death_penalty_class
        return TimerDeathPenalty

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """RQ's, from the main thread only. RQ's SIGTERM handler reads the state to choose
        between interrupting the main thread (idle: blocked on the queues) and letting it
        finish its job (busy): an async job starting on the loop's thread (RQ's
        ``prepare_execution`` sets busy) must not make a main thread blocked on the
        queues look busy, or the signal is never acted on."""
        if threading.current_thread() is threading.main_thread():
            super().set_state(state, pipeline)

    # -- in the worker's main thread --------------------------------------------------

    def execute_job(self, job: Job, queue: Queue) -> None:
        """An async job is handed to the event loop (returning once fewer than
        ``concurrency`` run); a sync one runs here, as :class:`JobWorker` runs it."""
        if not self._runs_async(job):
            super().execute_job(job, queue)
            return
        # Busy from here: a SIGTERM asks for a warm stop instead of interrupting this.
        self.set_state(WorkerStatus.BUSY)
        with self._room:
            self._async_running += 1
        loop = self._event_loop()
        if self._loop_thread is None:  # one at a time: the loop runs here, as a sync job
            loop.run_until_complete(self._run(job, queue))
            return
        asyncio.run_coroutine_threadsafe(self._run(job, queue), loop)
        self._wait_until_running(self.concurrency - 1)

    def _runs_async(self, job: Job) -> bool:
        if not rq_compat.INTERNALS or not isinstance(job, AllowedJob) or refusal(job) is not None:
            return False  # RQ's way (a refused job is refused there)
        try:
            func = job.func
        except Exception:  # not importable: the sync path fails it with the reason
            return False
        return is_async_callable(func)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The worker's loop: run by a thread of its own when several jobs share it, else
        by the main thread, one job at a time (no hand-over between threads)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            if self.concurrency > 1:
                self._loop_thread = threading.Thread(
                    target=self._loop.run_forever, name="perfkit-jobs-loop", daemon=True
                )
                self._loop_thread.start()
        return self._loop

    def _wait_until_running(self, most: int) -> None:
        """Block until at most ``most`` async jobs run, keeping the worker alive (its
        heartbeat, the maintenance that recovers abandoned jobs) meanwhile."""
        while True:
            with self._room:
                if self._room.wait_for(lambda: self._async_running <= most, self.dequeue_timeout):
                    return
            self.heartbeat()
            if self.should_run_maintenance_tasks:
                self.run_maintenance_tasks()

    def request_stop_execution(self, execution_id: str) -> None:
        """RQ's stop-execution command (from its listener thread): an async job's task
        is cancelled; anything else is RQ's (an in-process sync job stops at its next
        :func:`~perfkit.jobs.check_cancelled`)."""
        execution = self.executions.get(execution_id)
        task = self._tasks.get(execution.job_id) if execution is not None else None
        if task is None or self._loop is None:
            super().request_stop_execution(execution_id)
            return
        self._loop.call_soon_threadsafe(task.cancel)

    def teardown(self) -> None:
        """Let the running async jobs end (a warm stop), stop the loop, then JobWorker's."""
        if self._loop_thread is not None:
            self.set_state(WorkerStatus.BUSY)  # a first signal meanwhile does not interrupt
            self._wait_until_running(0)
            self._loop.call_soon_threadsafe(self._loop.stop)  # type: ignore[union-attr]
            self._loop_thread.join()
            self._loop_thread = None
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        super().teardown()

    # -- on the event loop -------------------------------------------------------------

    async def _run(self, job: Job, queue: Queue) -> None:
        task = asyncio.current_task()
        if task is not None:  # always, in a task; registered before the execution exists
            self._tasks[job.id] = task
        try:
            execution = self.prepare_execution(job)
            with self.heartbeating(job, execution):
                await self._perform(job, queue, execution)
        except Exception:  # Redis failed RQ's bookkeeping: recovery finds the job
            log.exception("async job bookkeeping failed", job_id=job.id)
        finally:
            self._tasks.pop(job.id, None)
            with self._room:
                self._async_running -= 1
                self._room.notify_all()

    async def _perform(self, job: Job, queue: Queue, execution: Execution) -> None:
        """RQ's ``perform_job`` for an async job, as a :func:`~perfkit.jobs.worker.job_run`."""
        with job_run(job, queue) as span:
            try:
                self.prepare_job_execution(job, len(self.queues) == 1)
                job.started_at = now()
                value = await self._await(job)
            except Exception:
                span.set_error("the job failed")
                rq_compat.fail_job(self, job, queue, execution, sys.exc_info())
            else:
                rq_compat.finish_job(self, job, queue, execution, value)

    async def _await(self, job: Job) -> Any:
        """The job's coroutine, under its timeout; a cancel or the timeout as RQ's errors."""
        timeout = job.timeout or Queue.DEFAULT_TIMEOUT
        deadline = asyncio.timeout(timeout if timeout > 0 else None)
        try:
            async with deadline:
                return await job.perform_async()  # type: ignore[attr-defined]
        except TimeoutError as exc:
            if deadline.expired():
                raise JobTimeoutException(
                    f"Task exceeded maximum timeout value ({timeout} seconds)"
                ) from exc
            raise
        except asyncio.CancelledError as exc:
            # Only a cancel (request_stop_execution) cancels a job's task.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            raise JobCancelledError(f"job {job.id} was canceled while running") from exc
