"""JobService: enqueue typed jobs on RQ, and manage the failed and completed ones."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import redis
from rq import Queue
from rq.exceptions import DuplicateJobError, InvalidJobOperation
from rq.executions import ExecutionRegistry
from rq.job import Dependency, Job, JobStatus
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.results import Result
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from perfkit import _telemetry
from perfkit._errors import ConfigError, JobArgumentError, JobError, PayloadError
from perfkit.jobs import _gate
from perfkit.jobs._metrics import DUE_KEY, JobMetrics, Series, read_series, summarize
from perfkit.jobs.cancel import cancel_job
from perfkit.jobs.failed import (
    UNREADABLE,
    FailedJob,
    FailedJobsPage,
    failed_job,
    processor_name,
    read_job,
    read_result,
    unreadable_job,
)
from perfkit.jobs.limits import META_KEY, Limit, check_limits, fill_buckets
from perfkit.jobs.processor import get_processor
from perfkit.jobs.progress import JobProgress, RunningJob, progress_of
from perfkit.jobs.queues import DEFAULT_QUEUES, Priority, priority_queue, worker_queue_names
from perfkit.jobs.retry import Backoff, rq_retry
from perfkit.jobs.serializer import JobSerializer, check_finite
from perfkit.jobs.stats import JobStats, QueueStats, health
from perfkit.settings import Settings

__all__ = ["JobService"]

# How many ids a bulk operation (retry all, clear) reads and handles per round trip.
_CHUNK = 500
_LEVELS = ("high", "normal", "low")


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _seconds(delay: float | timedelta | None) -> float:
    if delay is None:
        return 0.0
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if seconds < 0:
        raise JobArgumentError(f"delay must be >= 0 seconds, got {seconds:g}")
    return seconds


def _not_before(seconds: float) -> datetime:
    # RQ's scheduled registry keeps whole seconds and truncates: round up instead, so
    # a delayed job never runs before its delay has passed.
    when = datetime.now(UTC) + timedelta(seconds=seconds)
    if when.microsecond:
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return when


def _meta(due: datetime | None) -> dict[str, Any] | None:
    # The trace context, when traced; a delayed job's due time, for its queue wait.
    hook = _telemetry.job_meta
    meta = (hook() if hook is not None else None) or {}
    if due is not None:
        meta[DUE_KEY] = due.timestamp()
    return meta or None


class JobService:
    """Enqueue jobs on RQ queues and inspect them: stats, failed jobs, completed jobs.

    Parameters are the ``JOB_*`` settings (see docs/jobs.md); ``retry_base_delay=0``
    retries at once; ``retry_jitter`` draws each retry's delay from 0 to its value.
    Every job is written with :class:`JobSerializer` (JSON, no pickle), so workers must
    use it too (``perfkit worker`` does). ``queues`` are the base queues :meth:`stats`
    reports on (and the admin lists).
    """

    def __init__(
        self,
        connection: redis.Redis,
        *,
        queues: Iterable[str] = DEFAULT_QUEUES,
        retry_attempts: int = 3,
        retry_backoff: Backoff = "exponential",
        retry_base_delay: float = 1.0,
        failed_job_ttl: int = 7 * 24 * 3600,
        job_timeout: int = 180,
        health_window: float = 5 * 60,
        retry_jitter: bool = False,
    ) -> None:
        if failed_job_ttl <= 0:
            raise ConfigError(f"failed_job_ttl must be > 0 seconds, got {failed_job_ttl}")
        # Built once to check the values; jobs get a fresh Retry each.
        rq_retry(retry_attempts, retry_backoff, retry_base_delay)
        self.connection = connection
        self.queues = tuple(dict.fromkeys(queues))
        if not self.queues:
            raise ConfigError("queues must name at least one queue")
        self.retry_attempts = retry_attempts
        self.retry_backoff: Backoff = retry_backoff
        self.retry_base_delay = retry_base_delay
        self.failed_job_ttl = failed_job_ttl
        self.job_timeout = job_timeout
        self.health_window = health_window
        self.retry_jitter = retry_jitter
        self._queues: dict[str, Queue] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        connection: redis.Redis | None = None,
        queues: Iterable[str] = DEFAULT_QUEUES,
    ) -> JobService:
        """A service configured from ``settings`` (on ``settings.redis_url`` by default),
        reporting on ``queues``.

        The connection it makes gives up connecting after ``REDIS_CONNECT_TIMEOUT``, so a
        host that does not answer fails fast; it has no read timeout, which would cut a
        worker's blocking wait for jobs."""
        if connection is None:
            connection = redis.Redis.from_url(
                settings.redis_url, socket_connect_timeout=settings.redis_connect_timeout
            )
        return cls(
            connection,
            queues=queues,
            retry_attempts=settings.job_retry_attempts,
            retry_backoff=settings.job_retry_backoff,
            retry_base_delay=settings.job_retry_base_delay,
            failed_job_ttl=settings.failed_job_ttl,
            retry_jitter=settings.job_retry_jitter,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> JobService:
        """A service configured from the environment (``REDIS_URL``, ``JOB_*``)."""
        return cls.from_settings(Settings.from_env(environ, part="jobs"))

    def queue(self, name: str) -> Queue:
        """The RQ queue named ``name`` (an exact RQ name such as ``email:high``)."""
        found = self._queues.get(name)
        if found is None:
            found = Queue(
                name,
                connection=self.connection,
                serializer=JobSerializer,
                default_timeout=self.job_timeout,
            )
            self._queues[name] = found
        return found

    # -- enqueueing ---------------------------------------------------------------

    def add_email_job(
        self,
        to: str,
        subject: str,
        template: str,
        data: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> str:
        """Enqueue the built-in ``email.send`` processor (priority 1 unless given)."""
        options.setdefault("priority", Priority.HIGH)
        payload = {"to": to, "subject": subject, "template": template, "data": dict(data or {})}
        return self.enqueue("email.send", payload, **options)

    def add_notification_job(
        self, user_id: str, type: str, data: Mapping[str, Any] | None = None, **options: Any
    ) -> str:
        """Enqueue the built-in ``notifications.send`` processor (priority 1 unless given)."""
        options.setdefault("priority", Priority.HIGH)
        payload = {"user_id": user_id, "type": type, "data": dict(data or {})}
        return self.enqueue("notifications.send", payload, **options)

    def add_analytics_job(
        self, type: str, data: Mapping[str, Any] | None = None, **options: Any
    ) -> str:
        """Enqueue the processor ``analytics.<type>`` with ``data`` as its payload."""
        return self.enqueue(f"analytics.{type}", dict(data or {}), **options)

    def enqueue(
        self,
        processor_or_func: str | Callable[..., Any],
        payload: Any = None,
        *,
        queue: str | None = None,
        priority: int = Priority.NORMAL,
        delay: float | timedelta | None = None,
        retries: int | None = None,
        job_id: str | None = None,
        depends_on: str | Sequence[str] | None = None,
        limits: Iterable[Limit] = (),
    ) -> str:
        """Enqueue a job and return its id.

        ``processor_or_func`` is a processor name, a ``@processor`` function, or a plain
        module-level function (then ``queue`` is required and ``payload``, if not None,
        is its one argument). The payload is validated before anything is written: a
        bad one raises :class:`PayloadError` naming the field. ``priority`` is 1, 5 or
        10; ``delay`` (seconds or timedelta) puts the job in RQ's scheduled registry;
        ``retries`` overrides ``retry_attempts``; a given ``job_id`` must be new.
        ``depends_on`` (job ids) defers the job until they all finish (RQ's dependencies;
        a worker checks the dependent like any job when it runs); not with ``delay`` or
        ``job_id``.
        ``limits`` (:class:`~perfkit.jobs.limits.Concurrency`,
        :class:`~perfkit.jobs.limits.Rate`) add to the processor's own; a key template naming
        a field the payload lacks raises :class:`JobArgumentError` before anything is written.
        """
        parents: list[Dependency | Job | str] = (
            [depends_on] if isinstance(depends_on, str) else list(depends_on or ())
        )
        if parents and (delay or job_id is not None):
            raise JobArgumentError(
                "depends_on= cannot be combined with delay= or job_id= (RQ schedules and "
                "deduplicates a job without its dependencies)"
            )
        if isinstance(processor_or_func, str) or hasattr(processor_or_func, "processor"):
            entry = get_processor(processor_or_func)
            args: tuple[Any, ...] = (entry.validate(payload),)
            check_finite(msgspec.to_builtins(args[0]), f"payload for processor {entry.name!r}")
            path, description = entry.path, entry.name
            base = queue or entry.queue
            all_limits = (*entry.limits, *check_limits("enqueue", limits))
        else:
            func = processor_or_func
            self._check_plain_function(func)
            path = description = f"{func.__module__}.{func.__qualname__}"
            if queue is None:
                raise JobArgumentError(f"queue= is required to enqueue the plain function {func!r}")
            args = () if payload is None else (payload,)
            try:
                check_finite(msgspec.to_builtins(args), f"payload for {func.__qualname__}")
            except TypeError as exc:
                raise PayloadError(
                    f"payload for {func.__qualname__} is not encodable: {exc}"
                ) from exc
            base = queue
            all_limits = check_limits("enqueue", limits)
        buckets = fill_buckets(
            description, all_limits, msgspec.to_builtins(args[0]) if args else None
        )
        attempts = self.retry_attempts if retries is None else retries
        if attempts < 0:
            raise JobArgumentError(f"retries must be >= 0, got {attempts}")
        rq_queue = self.queue(priority_queue(base, priority))
        seconds = _seconds(delay)
        due = _not_before(seconds) if seconds else None
        with _telemetry.around(_telemetry.job_send, base) as span:
            meta = _meta(due) or {}
            if buckets:
                meta[META_KEY] = msgspec.to_builtins(buckets)
            job = rq_queue.create_job(
                path,
                args=args,
                job_id=job_id,
                # RQ's default description is a repr of the arguments, which the worker logs
                # (payloads may hold personal data): the processor's name, or the function's
                # path for a plain function (which is how listings tell the two apart).
                description=description,
                failure_ttl=self.failed_job_ttl,
                retry=rq_retry(
                    attempts, self.retry_backoff, self.retry_base_delay, jitter=self.retry_jitter
                ),
                status=JobStatus.SCHEDULED if seconds else JobStatus.QUEUED,
                meta=meta or None,
                depends_on=parents or None,
            )
            unique = job_id is not None
            try:
                if due is not None:
                    rq_queue.schedule_job(job, due, unique=unique)
                elif buckets and not parents:
                    # One transaction: the push, then the limits' admission (stay or park).
                    # A job with dependencies waits for them, not in its queue: it is
                    # checked when a worker takes it.
                    with self.connection.pipeline() as pipe:
                        rq_queue.enqueue_job(job, pipeline=pipe, unique=unique)
                        _gate.admit(pipe, job.id, rq_queue.key, buckets)
                        pipe.execute()
                else:
                    rq_queue.enqueue_job(job, unique=unique)
            except DuplicateJobError as exc:
                raise JobError(f"a job with id {job_id!r} already exists") from exc
            span.set_attribute("messaging.message.id", str(job.id))
        return str(job.id)

    @staticmethod
    def _check_plain_function(func: Callable[..., Any]) -> None:
        qualname = getattr(func, "__qualname__", "")
        module = getattr(func, "__module__", None)
        if not callable(func) or not qualname or "<" in qualname or module in (None, "__main__"):
            raise JobError(
                f"{func!r} cannot be enqueued: workers import the function by its path, "
                "so it must be a module-level function of an importable module"
            )

    # -- statistics ----------------------------------------------------------------

    def stats(self) -> JobStats:
        """Counts and health of each of the service's queues, in two round trips whatever
        the job count."""
        return JobStats(queues=self._queue_stats(self.queues))

    def job_metrics(self) -> list[JobMetrics]:
        """The job metrics of every worker, per processor (or function) and queue: runs
        by outcome, duration and queue-wait percentiles (one HGETALL; see docs/jobs.md)."""
        return summarize(read_series(self.connection))

    def job_metric_series(self) -> list[Series]:
        """The job metrics' series as recorded (what the metrics exposition renders)."""
        return read_series(self.connection)

    def reset_stats(self) -> None:
        """Nothing to zero: every job stat is a size of RQ's queues and registries, read
        from Redis when asked. This cannot empty them: use :meth:`clear_completed`,
        :meth:`retry_all_failed` or :meth:`delete_failed`. The job metrics
        (:meth:`job_metrics`) are the fleet's monotonic totals and are not reset either."""

    def _queue_stats(self, queues: Iterable[str]) -> list[QueueStats]:
        """Counts and health of each base queue of ``queues`` (any queues, not only the
        service's), in two round trips whatever the job count."""
        bases = list(dict.fromkeys(queues))
        now = time.time()
        recent_from = now - self.health_window + self.failed_job_ttl
        pipe = self.connection.pipeline(transaction=False)
        for base in bases:
            for level in _LEVELS:
                name = priority_queue(base, Priority[level.upper()])
                pipe.llen(self.queue(name).key)
                pipe.zcard(StartedJobRegistry.key_template.format(name))
                pipe.zcard(ScheduledJobRegistry.key_template.format(name))
                pipe.zcard(DeferredJobRegistry.key_template.format(name))
                # Entries past their score have expired and await RQ's cleanup.
                pipe.zcount(FinishedJobRegistry.key_template.format(name), now, "+inf")
                pipe.zcount(FailedJobRegistry.key_template.format(name), now, "+inf")
                pipe.zcount(FailedJobRegistry.key_template.format(name), recent_from, "+inf")
                pipe.smembers(WORKERS_BY_QUEUE_KEY % name)
        replies = pipe.execute()
        per_queue = 8 * len(_LEVELS)
        worker_keys: set[bytes] = set()
        for offset in range(7, len(replies), 8):
            worker_keys |= replies[offset]
        # A worker killed without notice stays in the set until its key expires: count live keys.
        ordered = sorted(worker_keys)
        if ordered:
            check = self.connection.pipeline(transaction=False)
            for key in ordered:
                check.exists(key)
            alive = {key for key, exists in zip(ordered, check.execute(), strict=True) if exists}
        else:
            alive = set()
        result = []
        for index, base in enumerate(bases):
            chunk = replies[index * per_queue : (index + 1) * per_queue]
            rows = [chunk[level * 8 : level * 8 + 8] for level in range(len(_LEVELS))]
            waiting_by = {level: int(row[0]) for level, row in zip(_LEVELS, rows, strict=True)}
            workers = len(set().union(*(row[7] for row in rows)) & alive)
            totals = [sum(int(row[column]) for row in rows) for column in range(1, 7)]
            started, scheduled, deferred, completed, failed, failed_recent = totals
            waiting = sum(waiting_by.values())
            status, reason = health(
                queue=base,
                workers=workers,
                waiting=waiting,
                scheduled=scheduled,
                failed_recent=failed_recent,
                window=self.health_window,
            )
            result.append(
                QueueStats(
                    queue=base,
                    waiting=waiting,
                    waiting_by_priority=waiting_by,
                    started=started,
                    scheduled=scheduled,
                    deferred=deferred,
                    completed=completed,
                    failed=failed,
                    failed_recent=failed_recent,
                    workers=workers,
                    status=status,
                    reason=reason,
                )
            )
        return result

    # -- failed jobs ---------------------------------------------------------------

    def failed_jobs(
        self, queue: str | Sequence[str], *, offset: int = 0, limit: int = 20
    ) -> FailedJobsPage:
        """A page of ``queue``'s failed jobs (all priority levels), newest first.

        ``queue`` may be several queues: one page across them, newest first (the page's
        ``queue`` is then ``None``), at the cost of one queue's page per queue."""
        if offset < 0 or limit < 1:
            raise JobArgumentError(
                f"need offset >= 0 and limit >= 1, got offset={offset} limit={limit}"
            )
        now = time.time()
        queues = [queue] if isinstance(queue, str) else list(queue)
        names = worker_queue_names(queues)
        pipe = self.connection.pipeline(transaction=False)
        for name in names:
            key = FailedJobRegistry.key_template.format(name)
            pipe.zcount(key, now, "+inf")
            # Each level's newest offset+limit entries are enough to merge the page.
            pipe.zrevrangebyscore(key, "+inf", now, start=0, num=offset + limit, withscores=True)
        replies = pipe.execute()
        total = sum(int(replies[i]) for i in range(0, len(replies), 2))
        entries: list[tuple[float, str, str]] = []
        for name, reply in zip(names, replies[1::2], strict=True):
            entries.extend((float(score), _text(member), name) for member, score in reply)
        entries.sort(reverse=True)
        page = entries[offset : offset + limit]
        # Each job's hash and the latest entry of its results stream (its failure text).
        pipe = self.connection.pipeline(transaction=False)
        for _, job_id, _ in page:
            pipe.hgetall(Job.key_for(job_id))
            pipe.xrevrange(Result.get_key(job_id), "+", "-", count=1)  # type: ignore[no-untyped-call]
        replies = pipe.execute()
        listed: list[FailedJob] = []
        for index, (score, job_id, name) in enumerate(page):
            raw, stream = replies[2 * index], replies[2 * index + 1]
            if not raw:  # the hash expired before the registry entry was cleaned
                continue
            failed_at = datetime.fromtimestamp(score - self.failed_job_ttl, UTC)
            job = read_job(job_id, raw, self.connection)
            result = read_result(job_id, stream, self.connection)
            if isinstance(job, str):
                listed.append(unreadable_job(job_id, name, job, failed_at))
            else:
                listed.append(failed_job(job, result, failed_at))
        return FailedJobsPage(
            queue=queue if isinstance(queue, str) else None,
            total=total,
            offset=offset,
            limit=limit,
            jobs=listed,
        )

    def _read(self, job_id: str) -> Job | str:
        """``job_id``'s job, or why it cannot be read; :class:`JobError` when there is none."""
        raw = self.connection.hgetall(Job.key_for(job_id))
        if not raw:
            raise JobError(f"no job with id {job_id!r}")
        return read_job(job_id, raw, self.connection)

    def _fetch(self, job_id: str) -> Job:
        job = self._read(job_id)
        if isinstance(job, str):
            raise JobError(
                f"job {job_id!r} is {UNREADABLE} ({job}): it can only be deleted "
                "(JobService.delete_failed, perfkit jobs delete)"
            )
        return job

    def _failed_registry(self, name: str) -> FailedJobRegistry:
        return FailedJobRegistry(name, connection=self.connection, serializer=JobSerializer)

    def job_status(self, job_id: str) -> str:
        """The RQ status of a job (``queued``, ``started``, ``failed`` ...), or
        ``unreadable`` for a job whose data cannot be read (delete it)."""
        job = self._read(job_id)
        return UNREADABLE if isinstance(job, str) else str(job.get_status().value)

    def job_progress(self, job_id: str) -> JobProgress | None:
        """The progress job ``job_id`` last reported with
        :func:`~perfkit.jobs.report_progress` (None: none, or the job is unreadable)."""
        job = self._read(job_id)
        return None if isinstance(job, str) else progress_of(job.meta)

    def running_jobs(self, *, limit: int = 20) -> list[RunningJob]:
        """Up to ``limit`` jobs that workers run now on the service's queues, with their
        progress (two round trips)."""
        pipe = self.connection.pipeline(transaction=False)
        for name in worker_queue_names(self.queues):
            pipe.zrange(StartedJobRegistry.key_template.format(name), 0, limit - 1)
        # Entries are "<job id>:<execution id>"; a job has one execution at a time.
        ids = list(
            dict.fromkeys(
                _text(entry).rsplit(":", 1)[0] for reply in pipe.execute() for entry in reply
            )
        )[:limit]
        pipe = self.connection.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(Job.key_for(job_id))
        found = []
        for job_id, raw in zip(ids, pipe.execute(), strict=True):
            job = read_job(job_id, raw, self.connection) if raw else None
            if isinstance(job, Job):
                found.append(
                    RunningJob(
                        id=job_id,
                        queue=job.origin,
                        function=job.func_name,
                        processor=processor_name(job),
                        started_at=job.started_at,
                        progress=progress_of(job.meta),
                    )
                )
        return found

    def cancel(self, job_id: str) -> str:
        """Cancel a job; returns the status it had (``queued``, ``scheduled``, ``started`` ...).

        A job not yet running never runs and is ``canceled`` at once. A running one is
        stopped by its worker, then ``canceled``: an async job's task is cancelled, a
        forked horse killed, an in-process sync job stops at its next
        :func:`~perfkit.jobs.check_cancelled` (see docs/jobs.md). A canceled job is never
        retried. A finished, failed or stopped job raises :class:`JobError`.
        """
        return cancel_job(self._fetch(job_id))

    def retry_failed(self, job_id: str) -> None:
        """Put a failed job back on its queue for one more attempt."""
        job = self._fetch(job_id)
        registry = FailedJobRegistry(
            job.origin, connection=self.connection, serializer=JobSerializer
        )
        try:
            registry.requeue(job)
        except InvalidJobOperation as exc:
            raise JobError(f"job {job_id!r} is not in the failed list of {job.origin!r}") from exc

    def retry_all_failed(self, queues: Iterable[str] = DEFAULT_QUEUES) -> int:
        """Requeue every failed job of ``queues``; returns how many were requeued."""
        requeued = 0
        for name in worker_queue_names(queues):
            registry = self._failed_registry(name)
            # Jobs that fail again while this runs re-enter the registry: stop at the
            # count seen at the start instead of chasing them.
            budget = self.connection.zcard(registry.key)
            while budget > 0:
                ids = registry.get_job_ids(0, min(budget, _CHUNK) - 1, cleanup=False)
                if not ids:
                    break
                for job_id in ids:
                    budget -= 1
                    try:
                        job = self._fetch(job_id)
                    except JobError:  # gone, or unreadable: left for delete_failed
                        if not self.connection.exists(Job.key_for(job_id)):
                            self.connection.zrem(registry.key, job_id)
                        continue
                    try:
                        registry.requeue(job)
                        requeued += 1
                    except InvalidJobOperation:  # requeued by another caller meanwhile
                        continue
        return requeued

    def delete_failed(self, job_id: str) -> None:
        """Delete a failed job and its failure record (an unreadable one too)."""
        job = self._read(job_id)
        if isinstance(job, Job):
            origin = job.origin
        else:
            raw = self.connection.hget(Job.key_for(job_id), "origin") or b""
            origin = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        registry = self._failed_registry(origin)
        if job_id not in registry:
            raise JobError(f"job {job_id!r} is not in the failed list of {origin!r}")
        if isinstance(job, Job):
            registry.remove(job, delete_job=True)
            return
        # RQ's delete reads the job: remove what RQ keeps of an unreadable one by key.
        pipe = self.connection.pipeline(transaction=False)
        pipe.zrem(registry.key, job_id)
        pipe.unlink(
            Job.key_for(job_id),
            Result.get_key(job_id),  # type: ignore[no-untyped-call]
            ExecutionRegistry.key_template.format(job_id),
        )
        pipe.execute()

    # -- completed jobs --------------------------------------------------------------

    def completed_count(self, queues: Iterable[str] = DEFAULT_QUEUES) -> int:
        """How many completed jobs ``queues`` keep (RQ keeps them for their result TTL)."""
        now = time.time()
        pipe = self.connection.pipeline(transaction=False)
        for name in worker_queue_names(queues):
            pipe.zcount(FinishedJobRegistry.key_template.format(name), now, "+inf")
        return sum(int(count) for count in pipe.execute())

    def clear_completed(self, queues: Iterable[str] = DEFAULT_QUEUES) -> int:
        """Delete the completed jobs of ``queues`` (and their results); returns how many."""
        cleared = 0
        for name in worker_queue_names(queues):
            key = FinishedJobRegistry.key_template.format(name)
            while True:
                ids = [_text(raw) for raw in self.connection.zrange(key, 0, _CHUNK - 1)]
                if not ids:
                    break
                pipe = self.connection.pipeline(transaction=False)
                for job_id in ids:
                    pipe.unlink(
                        Job.key_for(job_id),
                        Result.get_key(job_id),  # type: ignore[no-untyped-call]
                        ExecutionRegistry.key_template.format(job_id),
                    )
                pipe.zrem(key, *ids)
                pipe.execute()
                cleared += len(ids)
        return cleared
