"""Job metrics, per processor (or function) and queue, merged across every worker.

- ``perfkit_jobs_total{function, queue, outcome}``: executions ended, by outcome
  (``finished``, ``failed``, ``retried``, ``refused``, ``canceled``);
- ``perfkit_job_duration_seconds{function, queue, outcome}``: how long each ran;
- ``perfkit_job_queue_wait_seconds{function, queue}``: from enqueue (or, for a delayed
  job's first run, the time it was due) to its start.

Where a job runs (a worker, a forked work horse, an async task) :func:`record_outcome`
adds its numbers to one Redis hash, :data:`KEY`, with HINCRBY/HINCRBYFLOAT in one
pipelined round trip. Redis adds them atomically, so the hash *is* the fleet's total:
nothing is lost when a horse exits or a worker dies, nothing is counted twice, and a
read (:func:`read_series`) is one HGETALL however many workers there are. A field is
one series' counter, histogram bucket (by its upper bound, so a reader needs no bucket
layout) or sum.

The ``function`` label is the processor's name, or a plain function's import path; a
refused job is counted under ``(refused)``: the names of forged jobs do not become
label values.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Literal

import msgspec
import redis
import structlog
from rq.job import Job, JobStatus

from perfkit import _histogram, _telemetry
from perfkit.jobs.processor import processor_at

__all__ = [
    "BOUNDS",
    "DURATION",
    "KEY",
    "OUTCOMES",
    "TOTAL",
    "WAIT",
    "JobMetrics",
    "Outcome",
    "Series",
    "read_series",
    "record_abandoned",
    "record_canceled",
    "record_job",
    "record_outcome",
    "summarize",
]

KEY = "perfkit:jobs:metrics"
TOTAL = "perfkit_jobs_total"
DURATION = "perfkit_job_duration_seconds"
WAIT = "perfkit_job_queue_wait_seconds"
HELP = {
    TOTAL: "Job executions ended, by outcome.",
    DURATION: "How long job executions ran, by outcome.",
    WAIT: "Time from enqueue (or a delayed job's due time) to the start of its run.",
}
LABELS = {
    TOTAL: ("function", "queue", "outcome"),
    DURATION: ("function", "queue", "outcome"),
    WAIT: ("function", "queue"),
}
Outcome = Literal["finished", "failed", "retried", "refused", "canceled"]
OUTCOMES: tuple[Outcome, ...] = ("finished", "failed", "retried", "refused", "canceled")
# perfkit's one layout (50 µs to ~56 min, 9.05 % apart); later observations land in +Inf.
BOUNDS = _histogram.DEFAULT_BOUNDS
REFUSED = "(refused)"
# Where JobService keeps a delayed job's due time (unix seconds) in its meta.
DUE_KEY = "perfkit.due"

_log = structlog.get_logger("perfkit.jobs")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(list[str])
_SUM = "sum"
_INF = "+Inf"


class JobMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """One processor's (or function's) job metrics on one queue, over every worker:
    executions by outcome, and the median and 95th percentile of how long they ran
    (every outcome) and waited (seconds; None before the first)."""

    function: str
    queue: str
    outcomes: dict[str, int]
    duration_p50: float | None
    duration_p95: float | None
    wait_p50: float | None
    wait_p95: float | None


class Series(msgspec.Struct, frozen=True):
    """One label set of one metric as read back: a counter's ``value``, or a histogram's
    sum (``value``) and its counts by bucket upper bound (``buckets``, ``inf`` for +Inf)."""

    name: str
    labels: tuple[str, ...]
    value: float = 0.0
    buckets: dict[float, int] = {}


def _field(name: str, labels: Sequence[str], part: str | None = None) -> str:
    return _encoder.encode([name, *labels, *([part] if part is not None else [])]).decode()


def _observe(
    counts: list[str],
    sums: list[tuple[str, float]],
    name: str,
    labels: Sequence[str],
    seconds: float,
) -> None:
    index = bisect_left(BOUNDS, seconds)
    counts.append(_field(name, labels, repr(BOUNDS[index]) if index < len(BOUNDS) else _INF))
    sums.append((_field(name, labels, _SUM), seconds))


def record_outcome(
    connection: redis.Redis,
    *,
    function: str,
    queue: str,
    outcome: Outcome,
    duration: float | None = None,
    wait: float | None = None,
) -> None:
    """Count one ended execution of ``function`` on ``queue`` (its base name), with how
    long it ran and waited (None: not known, e.g. a job found abandoned).

    Never raises: a Redis error loses these numbers (logged), not the job."""
    counts = [_field(TOTAL, (function, queue, outcome))]
    sums: list[tuple[str, float]] = []
    if duration is not None:
        _observe(counts, sums, DURATION, (function, queue, outcome), max(duration, 0.0))
    if wait is not None:
        _observe(counts, sums, WAIT, (function, queue), max(wait, 0.0))
    try:
        pipe = connection.pipeline(transaction=False)
        for field in counts:
            pipe.hincrby(KEY, field, 1)
        for field, seconds in sums:
            pipe.hincrbyfloat(KEY, field, seconds)
        pipe.execute()
    except redis.RedisError as exc:
        _log.warning("job metrics not recorded", error=type(exc).__name__)
    hook = _telemetry.job_outcome
    if hook is not None:
        hook(function, queue, outcome, duration, wait)


def _function(job: Job, refused: bool) -> str:
    if refused:
        return REFUSED
    entry = processor_at(job.func_name or "")
    return entry.name if entry is not None else str(job.func_name)


def _outcome(job: Job, refused: bool) -> Outcome:
    status = job.get_status(refresh=False)
    if status == JobStatus.FINISHED:
        return "finished"
    if refused:
        return "refused"
    if status in (JobStatus.QUEUED, JobStatus.SCHEDULED):
        return "retried"
    if status in (JobStatus.STOPPED, JobStatus.CANCELED):
        return "canceled"
    return "failed"


def _waited(job: Job, started: float) -> float | None:
    due = (job.meta or {}).get(DUE_KEY)
    if isinstance(due, int | float) and not job.number_of_retries:
        return started - float(due)  # a delayed job's first run: from when it was due
    if job.enqueued_at is None:
        return None
    return started - job.enqueued_at.timestamp()


def _base(queue: str) -> str:
    return queue.removesuffix(":high").removesuffix(":low")


def record_abandoned(job: Job, *, refused: bool) -> None:
    """:func:`record_outcome` for ``job``, abandoned by a dead worker and found by a
    clean-up: retried or failed; how long it ran or waited is not known."""
    outcome: Outcome = "retried" if job.retries_left else "failed"
    function = _function(job, refused)
    record_outcome(job.connection, function=function, queue=_base(job.origin), outcome=outcome)


def record_canceled(job: Job) -> None:
    """:func:`record_outcome` for ``job``, canceled before it ran (it never will)."""
    try:
        function = _function(job, refused=False)
    except Exception:  # data that does not decode: counted with the refused
        function = REFUSED
    record_outcome(job.connection, function=function, queue=_base(job.origin), outcome="canceled")


def record_job(job: Job, queue: str, *, started: float, duration: float, refused: bool) -> None:
    """:func:`record_outcome` for ``job``, just run by a worker from RQ queue ``queue``
    (``started``: unix time), its outcome read from its status."""
    record_outcome(
        job.connection,
        function=_function(job, refused),
        queue=_base(queue),
        outcome=_outcome(job, refused),
        duration=duration,
        wait=_waited(job, started),
    )


def read_series(connection: redis.Redis) -> list[Series]:
    """Every series recorded by every worker (one HGETALL); fields that do not parse are
    skipped."""
    counters: dict[tuple[str, ...], float] = {}
    sums: dict[tuple[str, ...], float] = {}
    buckets: dict[tuple[str, ...], dict[float, int]] = {}
    for raw_field, raw_value in connection.hgetall(KEY).items():
        try:
            name, *rest = _decoder.decode(raw_field)
            width = len(LABELS[name])
            labels, parts = tuple(rest[:width]), rest[width:]
            value = float(raw_value)
            if len(labels) != width or len(parts) > 1:
                continue
            key = (name, *labels)
            if not parts:
                counters[key] = value
            elif parts[0] == _SUM:
                sums[key] = value
            else:
                bound = float("inf") if parts[0] == _INF else float(parts[0])
                buckets.setdefault(key, {})[bound] = int(value)
        except (msgspec.DecodeError, KeyError, ValueError):
            continue
    found = [Series(key[0], key[1:], value) for key, value in counters.items()]
    for key, counts in buckets.items():
        found.append(Series(key[0], key[1:], sums.get(key, 0.0), counts))
    return sorted(found, key=lambda series: (series.name, series.labels))


def _quantiles(histograms: list[dict[float, int]]) -> tuple[float | None, float | None]:
    merged: dict[float, int] = {}
    for buckets in histograms:
        for bound, count in buckets.items():
            merged[bound] = merged.get(bound, 0) + count
    bounds = sorted(bound for bound in merged if bound != float("inf"))
    counts = [merged[bound] for bound in bounds] + [merged.get(float("inf"), 0)]
    if not bounds:
        return None, None
    return _histogram.quantile(bounds, counts, 0.5), _histogram.quantile(bounds, counts, 0.95)


def summarize(series: list[Series]) -> list[JobMetrics]:
    """Per processor and queue: the outcomes and the duration and wait percentiles."""
    outcomes: dict[tuple[str, str], dict[str, int]] = {}
    durations: dict[tuple[str, str], list[dict[float, int]]] = {}
    waits: dict[tuple[str, str], list[dict[float, int]]] = {}
    for found in series:
        key = (found.labels[0], found.labels[1])
        counts = outcomes.setdefault(key, dict.fromkeys(OUTCOMES, 0))
        if found.name == TOTAL:
            counts[found.labels[2]] = int(found.value)
        elif found.name == DURATION:
            durations.setdefault(key, []).append(found.buckets)
        elif found.name == WAIT:
            waits.setdefault(key, []).append(found.buckets)
    summaries = []
    for (function, queue), counts in sorted(outcomes.items()):
        duration = _quantiles(durations.get((function, queue), []))
        wait = _quantiles(waits.get((function, queue), []))
        summaries.append(
            JobMetrics(
                function=function,
                queue=queue,
                outcomes=counts,
                duration_p50=duration[0],
                duration_p95=duration[1],
                wait_p50=wait[0],
                wait_p95=wait[1],
            )
        )
    return summaries
