"""Queue names and priorities.

RQ has no per-job priority, so each priority level of a queue is its own RQ queue:
``email:high`` (priority 1), ``email`` (5) and ``email:low`` (10). Workers listen to
every high queue first, then the normal ones, then the low ones; RQ always takes the
first non-empty queue in a worker's list, so a high-priority job runs before every
normal one already waiting.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

from perfkit._errors import JobArgumentError, JobError

__all__ = [
    "DEFAULT_QUEUES",
    "Priority",
    "priority_queue",
    "worker_queue_names",
]

# The seed's three queues; `perfkit worker` listens to them when given none.
DEFAULT_QUEUES: tuple[str, ...] = ("email", "notifications", "analytics")

_SUFFIXES = {1: ":high", 5: "", 10: ":low"}


class Priority(enum.IntEnum):
    """Job priorities of the seed guide: lower runs first."""

    HIGH = 1
    NORMAL = 5
    LOW = 10


def _check_base(queue: str) -> None:
    if not queue or queue.endswith((":high", ":low")) or any(c.isspace() for c in queue):
        raise JobError(
            f"queue name {queue!r} is not usable: give the base name (e.g. 'email'), "
            "without spaces and without a ':high'/':low' suffix"
        )


def priority_queue(queue: str, priority: int) -> str:
    """The RQ queue that holds ``queue``'s jobs of ``priority`` (1, 5 or 10)."""
    _check_base(queue)
    try:
        return queue + _SUFFIXES[int(priority)]
    except (KeyError, ValueError, TypeError):
        raise JobArgumentError(
            f"priority must be 1 (high), 5 (normal) or 10 (low), got {priority!r}"
        ) from None


def worker_queue_names(queues: Iterable[str] = DEFAULT_QUEUES) -> list[str]:
    """RQ queue names for a worker, in priority order: all high, then normal, then low."""
    bases: Sequence[str] = list(dict.fromkeys(queues))
    for queue in bases:
        _check_base(queue)
    return [queue + suffix for suffix in _SUFFIXES.values() for queue in bases]
