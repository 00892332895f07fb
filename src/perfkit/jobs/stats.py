"""Queue statistics and health, computed from counts only.

Every number comes from LLEN, ZCARD/ZCOUNT or SCARD on RQ's keys, in one pipeline: the
cost does not grow with the number of jobs (rq-dashboard loads every job and becomes
unusable at 100 000 failed ones).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from perfkit._stat_kinds import GaugeField

__all__ = ["JobStats", "QueueStats", "health"]

HealthStatus = Literal["healthy", "degraded"]


class QueueStats(msgspec.Struct, frozen=True, kw_only=True):
    """Counts for one queue (all its priority levels together) and its health.

    ``waiting_by_priority`` splits ``waiting`` by level (``high``/``normal``/``low``);
    ``failed_recent`` counts failures in the last ``health_window`` seconds.
    """

    queue: Annotated[str, msgspec.Meta(description="The base queue's name.")]
    waiting: Annotated[int, GaugeField("Jobs waiting in the queue.", mode="max")]
    waiting_by_priority: Annotated[
        dict[str, int], msgspec.Meta(description="`waiting` by level: high, normal, low.")
    ]
    started: Annotated[int, GaugeField("Jobs being run by a worker now.", mode="max")]
    scheduled: Annotated[int, GaugeField("Jobs scheduled for later.", mode="max")]
    deferred: Annotated[
        int, GaugeField("Jobs held until the jobs they depend on finish.", mode="max")
    ]
    # RQ keeps finished jobs for their result TTL and failed ones until retried or
    # deleted: sizes of registries, not monotonic totals.
    completed: Annotated[
        int, GaugeField("Completed jobs RQ still keeps (for their result TTL).", mode="max")
    ]
    failed: Annotated[
        int, GaugeField("Failed jobs RQ keeps (until retried or deleted).", mode="max")
    ]
    failed_recent: Annotated[int, GaugeField("Jobs that failed in the health window.", mode="max")]
    workers: Annotated[int, GaugeField("Workers listening on the queue.", mode="max")]
    status: Annotated[
        HealthStatus,
        msgspec.Meta(
            description="healthy, or degraded: no worker listens, or jobs failed in the window."
        ),
    ]
    reason: Annotated[str, msgspec.Meta(description="Why, in words (the CLI shows it).")]


class JobStats(msgspec.Struct, frozen=True, kw_only=True):
    """What ``JobService.stats()`` returns: one :class:`QueueStats` per base queue the
    service reports on (its ``queues``), in that order.

    The exporters label each queue's fields with ``queue`` (``perfkit_jobs_waiting{queue=
    "email"}``)."""

    queues: Annotated[
        list[QueueStats], msgspec.Meta(description="One per base queue reported on, in order.")
    ]

    def queue(self, name: str) -> QueueStats:
        """The stats of base queue ``name`` (``KeyError`` when not reported)."""
        for found in self.queues:
            if found.queue == name:
                return found
        raise KeyError(name)


def health(
    *, queue: str, workers: int, waiting: int, scheduled: int, failed_recent: int, window: float
) -> tuple[HealthStatus, str]:
    """The health status of a queue and the reason, from its counts.

    ``degraded`` when no worker listens (jobs would wait forever) or when jobs failed in
    the last ``window`` seconds; ``healthy`` otherwise.
    """
    reasons = []
    if workers == 0:
        # The counts by name, as `perfkit jobs stats` shows them in columns: a scheduled
        # job is not "waiting" there.
        pending = f" ({waiting} waiting, {scheduled} scheduled)" if waiting or scheduled else ""
        reasons.append(f"no worker listens on {queue!r}{pending}")
    if failed_recent:
        reasons.append(f"{failed_recent} job(s) failed in the last {window:g} s")
    if reasons:
        return "degraded", "; ".join(reasons)
    return "healthy", f"{workers} worker(s) listening, no recent failures"
