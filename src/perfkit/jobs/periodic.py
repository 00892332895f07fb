"""Periodic jobs: each period's job enqueued exactly once, however many workers schedule.

::

    periodic("cache.warm", every=30 * 60)           # in a module the workers import
    periodic("analytics.sales_aggregation", every=3600, payload={"period": "daily"})

Time is cut into periods aligned on the epoch (``every`` whole seconds each), the same
for every process. Each :class:`PeriodicScheduler` (``perfkit worker --with-cron``, or
``perfkit cron``) checks its schedule every second and, for each entry whose current
period has not run yet, *claims* the period with one atomic compare-and-set in Redis
(the claimed period's start time only goes up, also when ``every`` changes), and only
the claimant enqueues the job. So with N
schedulers each period runs once, and when the scheduling process dies another one
claims the next period within a second: no lock, no leader, nothing to expire.

Why not RQ's ``CronScheduler``: each of its processes enqueues every due job by itself
(N schedulers, N runs), runs interval jobs at once on every start, and enqueues with
pickle. Its schedule format is kept in spirit: ``every`` seconds, one job per period.

A new entry runs in the current period (at once), then at the start of each period.
The job goes through :class:`~perfkit.jobs.JobService` (validated payload, retries,
JSON); its id is ``periodic-<name>-<start>`` (the period's start, epoch seconds). A
scheduler that dies between its claim and the enqueue (a window of one Redis round trip)
loses that one period.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from rq.job import Job

from perfkit import _defaults
from perfkit._errors import ConfigError, JobError
from perfkit.jobs.processor import get_processor
from perfkit.jobs.service import JobService
from perfkit.settings import Settings

__all__ = [
    "CLAIMS_KEY",
    "RUNS_KEY",
    "Periodic",
    "PeriodicRun",
    "PeriodicScheduler",
    "default_schedule",
    "periodic",
    "periodic_runs",
    "schedule",
]

log = structlog.get_logger("perfkit.jobs")

# Redis hashes, by entry name: the start of the last claimed period, the last run's record.
CLAIMS_KEY = "perfkit:periodic:claims"
RUNS_KEY = "perfkit:periodic:runs"

# Set the field to ARGV[1] if it is below it (or absent): 1 if this caller won the period.
_CLAIM = """
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '-1')
if last < tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
    return 1
end
return 0
"""

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


class Periodic(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One entry of the schedule: run ``processor`` with ``payload`` every ``every`` s."""

    name: str
    processor: str
    every: int
    payload: dict[str, Any] = {}
    priority: int = 5


class PeriodicRun(msgspec.Struct, frozen=True, kw_only=True):
    """An entry as the schedulers last recorded it, with its last and next runs.

    ``last_status`` is the RQ status of the last job (None once RQ dropped it);
    ``last_scheduler`` the ``host:pid`` of the process that enqueued it.
    """

    name: str
    processor: str
    every: int
    last_run_at: datetime | None
    last_job_id: str | None
    last_status: str | None
    last_scheduler: str | None
    next_run_at: datetime


class _Record(msgspec.Struct, frozen=True, kw_only=True):
    processor: str
    every: int
    period_start: int | None = None
    job_id: str | None = None
    enqueued_at: float | None = None
    scheduler: str | None = None


_schedule: _defaults.Slot[dict[str, Periodic]] = _defaults.slot(
    "jobs.schedule", dict, declaration=True
)


def periodic(
    processor: str,
    *,
    every: int,
    payload: Mapping[str, Any] | None = None,
    name: str | None = None,
    priority: int = 5,
) -> Periodic:
    """Add (or replace) an entry of this process's schedule and return it.

    ``every`` is the period in whole seconds (at least 1); ``name`` defaults to the
    processor's name. The payload is validated now, as at enqueue.
    """
    entry = Periodic(
        name=name or processor,
        processor=processor,
        every=every,
        payload=dict(payload or {}),
        priority=priority,
    )
    _check(entry)
    _schedule.value[entry.name] = entry
    return entry


def _check(entry: Periodic) -> None:
    if not _NAME.match(entry.name):
        raise ConfigError(
            f"periodic job name {entry.name!r}: use 1-100 letters, digits, '_', '.', ':', '-'"
        )
    if not (isinstance(entry.every, int) and entry.every >= 1):
        raise ConfigError(
            f"periodic job {entry.name!r}: every must be whole seconds >= 1, got {entry.every!r}"
        )
    get_processor(entry.processor).validate(entry.payload)


def schedule() -> list[Periodic]:
    """This process's schedule (a copy), by name."""
    entries = _schedule.value
    return [entries[name] for name in sorted(entries)]


def default_schedule(settings: Settings) -> list[Periodic]:
    """This process's schedule, plus ``cache.warm`` every ``CACHE_WARMUP_INTERVAL``
    (30 min) unless the schedule has an entry of that name."""
    entries = {entry.name: entry for entry in schedule()}
    entries.setdefault(
        "cache.warm",
        Periodic(
            name="cache.warm",
            processor="cache.warm",
            every=max(1, round(settings.cache_warmup_interval)),
        ),
    )
    return [entries[name] for name in sorted(entries)]


def _job_id(name: str, start: int) -> str:
    # RQ job ids allow letters, digits, '_' and '-'.
    return f"periodic-{re.sub(r'[^A-Za-z0-9_-]', '_', name)}-{start}"


class PeriodicScheduler:
    """Enqueues the schedule's due jobs through ``service``; any number may run at once.

    :meth:`tick` does one pass (returns the ids enqueued); :meth:`start` runs passes
    every ``poll`` seconds in a daemon thread, :meth:`run` in the calling thread.
    """

    def __init__(
        self,
        service: JobService,
        entries: Iterable[Periodic] | None = None,
        *,
        poll: float = 1.0,
    ) -> None:
        self.service = service
        self.entries = list(schedule() if entries is None else entries)
        for entry in self.entries:
            _check(entry)
        if poll <= 0:
            raise ConfigError(f"poll must be > 0 seconds, got {poll}")
        self.poll = poll
        self._claim = service.connection.register_script(_CLAIM)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self) -> None:
        """Record the schedule's entries never run yet in Redis (for the admin API).

        HSETNX: an entry's record is otherwise rewritten by whoever enqueues its job,
        and a read-modify-write here could put back an older last run."""
        connection = self.service.connection
        for entry in self.entries:
            record = _Record(processor=entry.processor, every=entry.every)
            connection.hsetnx(RUNS_KEY, entry.name, msgspec.json.encode(record))

    def tick(self, now: float | None = None) -> list[str]:
        """Claim and enqueue every entry whose current period has not run; their job ids."""
        now = time.time() if now is None else now
        enqueued = []
        for entry in self.entries:
            start = int(now // entry.every) * entry.every
            if not self._claim(keys=[CLAIMS_KEY], args=[start, entry.name]):
                continue
            job_id = _job_id(entry.name, start)
            try:
                self.service.enqueue(
                    entry.processor, entry.payload, priority=entry.priority, job_id=job_id
                )
            except JobError as exc:  # e.g. the id exists: a clock far behind the others'
                log.warning("periodic job not enqueued", name=entry.name, error=str(exc))
                continue
            record = _Record(
                processor=entry.processor,
                every=entry.every,
                period_start=start,
                job_id=job_id,
                enqueued_at=now,
                scheduler=f"{socket.gethostname()}:{os.getpid()}",
            )
            self.service.connection.hset(RUNS_KEY, entry.name, msgspec.json.encode(record))
            enqueued.append(job_id)
        return enqueued

    def run(self) -> None:
        """Pass after pass until :meth:`stop`; a failed pass (Redis away) is logged."""
        self.publish()
        while True:
            try:
                self.tick()
            except Exception as exc:  # keep scheduling once Redis is back
                log.warning("periodic pass failed", error=repr(exc))
            if self._stop.wait(self.poll):
                return

    def start(self) -> None:
        """Run :meth:`run` in a daemon thread (no-op when running)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="perfkit-periodic", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the thread (or :meth:`run`) after its current pass."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)


def periodic_runs(service: JobService, now: float | None = None) -> list[PeriodicRun]:
    """The schedule the schedulers published, with each entry's last and next runs."""
    now = time.time() if now is None else now
    connection = service.connection
    records = {
        (name.decode() if isinstance(name, bytes) else str(name)): msgspec.json.decode(
            raw, type=_Record
        )
        for name, raw in connection.hgetall(RUNS_KEY).items()
    }
    names = sorted(records)
    pipe = connection.pipeline(transaction=False)
    for name in names:
        # A name never run reads a job key that cannot exist: one reply per entry.
        pipe.hget(Job.key_for(records[name].job_id or "-"), "status")
    statuses = pipe.execute()
    runs = []
    for name, status in zip(names, statuses, strict=True):
        record = records[name]
        start = record.period_start
        next_at = start + record.every if start is not None else now
        runs.append(
            PeriodicRun(
                name=name,
                processor=record.processor,
                every=record.every,
                last_run_at=(
                    datetime.fromtimestamp(record.enqueued_at, UTC)
                    if record.enqueued_at is not None
                    else None
                ),
                last_job_id=record.job_id,
                last_status=status.decode() if status else None,
                last_scheduler=record.scheduler,
                next_run_at=datetime.fromtimestamp(max(next_at, now), UTC),
            )
        )
    return runs
