"""Retry schedules, built as explicit interval lists for RQ's ``Retry``.

RQ has no exponential mode: ``Retry(max=3, interval=[1])`` waits 1 s before *every*
retry, because a list shorter than ``max`` repeats its first value. So the full list
(one interval per retry) is always built here. RQ's scheduler keeps times in whole
seconds, so intervals are rounded up to whole seconds (never shorter than asked).

Full jitter (``JOB_RETRY_JITTER``, off by default) draws each delay uniformly between
0 and its scheduled value, once per job at enqueue, so that many jobs failing together
(an outage) do not all come back in the same second.
"""

from __future__ import annotations

import math
import random
from typing import Literal

from rq import Retry

from perfkit._errors import ConfigError

__all__ = ["Backoff", "retry_intervals", "rq_retry"]

Backoff = Literal["exponential", "fixed"]


def retry_intervals(attempts: int, backoff: Backoff, base_delay: float) -> list[int]:
    """The delay in seconds before each of ``attempts`` retries.

    ``exponential`` doubles from ``base_delay`` (1, 2, 4, 8 ... for a 1 s base),
    ``fixed`` waits ``base_delay`` every time. A ``base_delay`` of 0 retries at once.
    """
    if attempts < 0:
        raise ConfigError(f"retry attempts must be >= 0, got {attempts}")
    if base_delay < 0:
        raise ConfigError(f"retry base delay must be >= 0 seconds, got {base_delay}")
    if backoff == "exponential":
        delays = [base_delay * 2**attempt for attempt in range(attempts)]
    elif backoff == "fixed":
        delays = [base_delay] * attempts
    else:
        raise ConfigError(f"retry backoff must be 'exponential' or 'fixed', got {backoff!r}")
    return [math.ceil(delay) for delay in delays]


def rq_retry(
    attempts: int, backoff: Backoff, base_delay: float, *, jitter: bool = False
) -> Retry | None:
    """An RQ ``Retry`` with one explicit interval per retry, or ``None`` for no retries.

    With ``jitter``, each interval is drawn uniformly from 0 to its value (full jitter).
    """
    if attempts == 0:
        return None
    intervals = retry_intervals(attempts, backoff, base_delay)
    if jitter:
        # Not for secrets: spreading retries needs no cryptographic randomness.
        intervals = [random.randint(0, interval) for interval in intervals]
    return Retry(max=attempts, interval=intervals)
