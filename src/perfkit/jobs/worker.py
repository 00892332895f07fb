"""RQ workers that run a job once, find a dead worker's job again in seconds, and run
only what the application registered.

RQ finds a job whose worker died (SIGKILL, OOM, power loss) when the job's entry in the
started registry expires and some worker's maintenance pass sees it: it is then retried
if it has retries left, else moved to the failed list. Out of the box that takes up to
RQ's maintenance interval (10 min) plus a heartbeat TTL padded by 60 s (or the whole job
timeout for the non-forking worker, which does not heartbeat during a job), and a retry
with a backoff then waits up to a minute more for the dead worker's scheduler lock.
These workers bound it to ``2 * heartbeat_interval + maintenance_interval`` plus the
backoff (under 10 s with the defaults, 2 s and 1 s):

- the started-registry entry lives two heartbeat intervals, refreshed every interval,
  by a heartbeat thread in :class:`JobWorker` (RQ's parent process in
  :class:`ForkingJobWorker`);
- an idle worker wakes at least every ``maintenance_interval`` to run maintenance
  (RQ would block up to ``worker_ttl - 15`` s on the queues);
- the scheduler (:class:`~perfkit.jobs.scheduler.Scheduler`) leases its lock for
  seconds, not a minute, and dies with its worker.

At most one execution at a time: a forked work horse dies with its worker
(:mod:`perfkit.jobs.lifeline`), so a job is never retried as abandoned while a horse of
the dead worker still runs it. Jobs naming anything but a registered processor or a
function of an allowed module are refused (:mod:`perfkit.jobs.allowlist`), and
permanent failures (:class:`~perfkit.PermanentJobError`, a processor's ``no_retry_on``)
are not retried.

:class:`JobWorker` runs jobs in its own process (RQ's ``SimpleWorker``, several times the
throughput); :class:`ForkingJobWorker` forks a work horse per job (RQ's ``Worker``) for
isolation from leaks and crashes in job code.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import redis
import structlog
from rq import SimpleWorker, Worker
from rq.exceptions import AbandonedJobError
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.scheduler import RQScheduler

from perfkit import _telemetry, _units
from perfkit._compat.redis import stop_pubsub_thread
from perfkit._compat.rq import SchedulerHook
from perfkit._errors import ConfigError, PermanentJobError
from perfkit.jobs._limited import LimitHooks
from perfkit.jobs._metrics import record_abandoned, record_job
from perfkit.jobs.allowlist import AllowedJob, is_refused
from perfkit.jobs.cancel import end_canceled, is_cancel_requested
from perfkit.jobs.lifeline import die_with_parent
from perfkit.jobs.processor import processor_at
from perfkit.jobs.queues import DEFAULT_QUEUES, worker_queue_names
from perfkit.jobs.scheduler import Scheduler
from perfkit.jobs.serializer import JobSerializer

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_MAINTENANCE_INTERVAL",
    "ForkingJobWorker",
    "JobWorker",
    "make_worker",
]

log = structlog.get_logger("perfkit.jobs")

# Recovery after SIGKILL: entry TTL 2 x 2 s, found by the next 1 s maintenance pass.
DEFAULT_HEARTBEAT_INTERVAL = 2
DEFAULT_MAINTENANCE_INTERVAL = 1


def _worker_options(heartbeat_interval: int, maintenance_interval: int) -> dict[str, Any]:
    if heartbeat_interval < 1 or maintenance_interval < 1:
        raise ConfigError(
            "heartbeat_interval and maintenance_interval must be >= 1 s, got "
            f"{heartbeat_interval} and {maintenance_interval}"
        )
    return {
        "serializer": JobSerializer,
        "job_class": AllowedJob,
        "job_monitoring_interval": heartbeat_interval,
        "maintenance_interval": maintenance_interval,
        # The worker's key must outlive the idle wait between heartbeats (see dequeue_timeout).
        "worker_ttl": max(60, maintenance_interval + 15),
    }


@contextmanager
def job_run(job: Job, queue: Queue) -> Iterator[_telemetry.Span]:
    """A worker's run of ``job`` from ``queue`` (sync or async): in a unit of work named
    after its function (N+1 detection) and the telemetry hook's context, its outcome
    counted in the job metrics when the block ends."""
    started, clock = time.time(), time.perf_counter()
    with (
        _units.unit_of_work("job", job.func_name or "<job>"),
        _telemetry.around(_telemetry.job_process, queue.name, job.id, job.meta or {}) as span,
    ):
        yield span
    refused = isinstance(job, AllowedJob) and job.refused
    duration = time.perf_counter() - clock
    record_job(job, queue.name, started=started, duration=duration, refused=refused)


class _BoundedRecovery(LimitHooks, SchedulerHook):
    """Shared by both worker classes: short heartbeat TTL, maintenance even when idle,
    limits (:mod:`perfkit.jobs._limited`)."""

    connection: redis.Redis
    job_monitoring_interval: int
    maintenance_interval: int
    worker_ttl: int
    _stopped_job_id: str | None
    pubsub: Any
    pubsub_thread: Any
    scheduler: RQScheduler | None

    def __init__(
        self,
        queues: Sequence[str],
        *,
        connection: redis.Redis,
        heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
        maintenance_interval: int = DEFAULT_MAINTENANCE_INTERVAL,
        **kwargs: Any,
    ) -> None:
        kwargs.update(_worker_options(heartbeat_interval, maintenance_interval))
        # Through LimitHooks to RQ's SimpleWorker or Worker, next in the MRO.
        super().__init__(list(queues), connection=connection, **kwargs)
        self.push_exc_handler(_stop_permanent_failures)  # type: ignore[attr-defined]
        self.push_exc_handler(_count_abandoned)  # type: ignore[attr-defined]

    def _start_own_scheduler(
        self, burst: bool, logging_level: str | None, date_format: str, log_format: str
    ) -> None:
        # As RQ's, with perfkit's Scheduler (short lock lease, dies with the worker).
        self.scheduler = Scheduler(
            self.queues,  # type: ignore[attr-defined]
            connection=self.connection,
            logging_level=logging_level or "INFO",
            serializer=self.serializer,  # type: ignore[attr-defined]
            **({"date_format": date_format} if date_format else {}),
            **({"log_format": log_format} if log_format else {}),
        )
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
            finally:
                self.scheduler.release_locks()  # type: ignore[no-untyped-call]
                self.scheduler.register_death()
        else:
            self.scheduler.start()

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """RQ's, as a :func:`job_run` (where the job runs, in the work horse for the
        forking worker)."""
        with job_run(job, queue) as span:
            # The next class in the MRO is RQ's SimpleWorker or Worker.
            succeeded: bool = super().perform_job(job, queue, execution)  # type: ignore[misc]
            if not succeeded:
                span.set_error("the job failed")
        return succeeded

    def handle_job_failure(
        self,
        job: Job,
        queue: Queue,
        started_job_registry: Any = None,
        exc_string: str = "",
        execution: Execution | None = None,
    ) -> None:
        """RQ's, except for a job stopped by a cancel: it ends ``canceled``, not retried."""
        if is_cancel_requested(self.connection, job.id):
            self._free(job)  # its limit slots (LimitHooks'), as a failure would
            end_canceled(self, job, execution)
            # RQ remembers the job it stopped (a killed horse) to mark it stopped.
            if self._stopped_job_id == job.id:
                self._stopped_job_id = None
            log.info("job canceled", job_id=job.id)
            return
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)

    @property
    def dequeue_timeout(self) -> int:
        return max(1, min(self.worker_ttl - 15, int(self.maintenance_interval)))

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # Two intervals: one late heartbeat does not make a running job look abandoned.
        return 2 * int(self.job_monitoring_interval)

    def unsubscribe(self) -> None:
        # As RQ's, but the listener thread is told to stop *before* UNSUBSCRIBE is sent,
        # so the reply that wakes it also ends it. RQ stops it after, and the thread,
        # woken too early, goes back to a 60 s wait that RQ's 1 s join then sits out:
        # a second lost at every burst worker's exit.
        if self.pubsub_thread:
            stop_pubsub_thread(self.pubsub_thread)
            self.pubsub.unsubscribe()
            self.pubsub_thread.join(timeout=1)
            self.pubsub.close()


class JobWorker(_BoundedRecovery, SimpleWorker):
    """Non-forking worker (the default): runs jobs in its own process, heartbeating.

    One heartbeat thread per worker (started with the first job) refreshes the running
    jobs' entries every ``heartbeat_interval``; RQ's SimpleWorker sends none during a job.
    """

    def __init__(self, queues: Sequence[str], **kwargs: Any) -> None:
        super().__init__(queues, **kwargs)
        self._beats: threading.Thread | None = None
        self._beat_lock = threading.Lock()
        self._stopped = threading.Event()
        # The jobs the heartbeat thread keeps alive, by execution id.
        self._running: dict[str, tuple[Job, Execution]] = {}

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """RQ's, while the heartbeat thread keeps the job's started-registry entry alive."""
        with self.heartbeating(job, execution):
            return bool(super().perform_job(job, queue, execution))

    @contextmanager
    def heartbeating(self, job: Job, execution: Execution) -> Iterator[None]:
        """Keep ``job``'s started-registry entry alive while the block runs (any thread)."""
        with self._beat_lock:
            if self._beats is None:
                self._beats = threading.Thread(
                    target=self._beat, name="perfkit-heartbeat", daemon=True
                )
                self._beats.start()
            self._running[execution.id] = (job, execution)
        try:
            yield
        finally:
            # Under the lock: no beat for this job can start once it is cleared.
            with self._beat_lock:
                del self._running[execution.id]

    def _beat(self) -> None:
        while not self._stopped.wait(self.job_monitoring_interval):
            with self._beat_lock:
                for job, execution in self._running.values():
                    try:
                        self.maintain_heartbeats(job, execution)
                    except Exception as exc:  # a missed beat is retried next interval
                        log.warning("job heartbeat failed", job_id=job.id, error=str(exc))

    def teardown(self) -> None:
        """Stop the heartbeat thread, then RQ's teardown."""
        if self._beats is not None:
            self._stopped.set()
            self._beats.join()
            self._beats = None
        super().teardown()  # type: ignore[no-untyped-call]


class ForkingJobWorker(_BoundedRecovery, Worker):
    """Forking worker: each job runs in a forked work horse, isolated from the worker.

    The horse dies with the worker (:func:`~perfkit.jobs.lifeline.die_with_parent`):
    RQ's horse, in a process group of its own, outlives a SIGKILLed worker and finishes
    a job that the next worker then runs again.
    """

    _worker_pid = 0

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Fork a horse for ``job`` (RQ's), remembering which process is its parent."""
        self._worker_pid = os.getpid()
        super().execute_job(job, queue)

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        """In the horse: tie its life to the worker's, then RQ's horse."""
        die_with_parent(self._worker_pid)
        super().main_work_horse(job, queue)

    def handle_job_failure(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:
        """RQ's; called in the worker itself (not the horse) when the horse died before it
        could count its job (stopped, killed, crashed), which is then counted here."""
        super().handle_job_failure(job, queue, *args, **kwargs)
        if os.getpid() == self._worker_pid and job.started_at is not None:
            started = job.started_at.timestamp()
            duration = time.time() - started
            record_job(job, queue.name, started=started, duration=duration, refused=False)


def _stop_permanent_failures(
    job: Job,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> bool:
    """RQ exception handler: a permanent failure uses up the job's retries (fails at once).

    Permanent: :class:`~perfkit.PermanentJobError` (so a bad payload, an unknown
    template, a refused job) and whatever the job's processor does not retry
    (``retry_on=`` / ``no_retry_on=``). Returns True so RQ's other handlers still run.
    """
    if exc_value is None or not job.retries_left:
        return True
    entry = processor_at(job.func_name or "")
    permanent = (
        isinstance(exc_value, PermanentJobError) if entry is None else not entry.retries(exc_value)
    )
    if permanent:
        # RQ stores both: the failed listing counts attempts as intervals used + 1.
        used = len(job.retry_intervals or []) - job.retries_left
        job.retry_intervals = (job.retry_intervals or [])[: max(used, 0)]
        job.retries_left = 0
        log.info(
            "job failed permanently, not retried", job_id=job.id, error=type(exc_value).__name__
        )
    return True


def _count_abandoned(
    job: Job,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> bool:
    """RQ exception handler: a job its dead worker abandoned, found by a clean-up, is
    counted in the job metrics (retried or failed, for how long it ran is not known)."""
    if exc_type is not None and issubclass(exc_type, AbandonedJobError):
        record_abandoned(job, refused=is_refused(job))
    return True


def make_worker(
    connection: redis.Redis,
    queues: Sequence[str] = DEFAULT_QUEUES,
    *,
    fork: bool = False,
    concurrency: int = 1,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
    maintenance_interval: int = DEFAULT_MAINTENANCE_INTERVAL,
    name: str | None = None,
) -> JobWorker | ForkingJobWorker:
    """A worker on the base ``queues``, listening high priority first, with the JSON serializer.

    Run it with ``worker.work(with_scheduler=True)``: retries with a delay and delayed
    jobs only run when some worker runs RQ's scheduler. Not forking, it runs up to
    ``concurrency`` async jobs at once on its event loop
    (:class:`~perfkit.jobs.asyncrunner.AsyncJobWorker`); forking, one job at a time.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    if fork and concurrency > 1:
        raise ConfigError(
            f"concurrency={concurrency} with fork: a forking worker runs one job at a time "
            "in its horse; run async jobs concurrently on a worker that does not fork"
        )
    names = worker_queue_names(queues)
    options: dict[str, Any] = {
        "connection": connection,
        "heartbeat_interval": heartbeat_interval,
        "maintenance_interval": maintenance_interval,
        "name": name,
    }
    if fork:
        return ForkingJobWorker(names, **options)
    # Imported here: the async worker is a JobWorker, defined above.
    from perfkit.jobs.asyncrunner import AsyncJobWorker

    return AsyncJobWorker(names, concurrency=concurrency, **options)
