"""A job's stored call bound to its function's signature before the body runs.

Arguments that do not fit the signature (a forged entry, or a deploy that changed the
signature under queued jobs) make Python raise ``TypeError`` at the call, before the
body runs: retried, it fails the same way every time. :func:`call_mismatch` finds it
first, so the worker fails the job at once (:class:`~perfkit.PermanentJobError`); a
``TypeError`` raised *inside* the body is the job's own failure and stays retryable.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from rq.job import Job

__all__ = ["call_mismatch"]


def call_mismatch(job: Job, func: Callable[..., Any]) -> str | None:
    """Why ``job``'s stored arguments cannot be passed to ``func`` (None: they fit).

    The message names the function, its signature and Python's reason (which names
    parameters, never the values: payloads may hold personal data)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature: Python decides
        return None
    try:
        signature.bind(*job.args, **job.kwargs)
    except TypeError as exc:
        return (
            f"job {job.id}: its stored arguments do not fit {job.func_name}{signature} "
            f"({exc}): failed without retries, no attempt can succeed"
        )
    return None
