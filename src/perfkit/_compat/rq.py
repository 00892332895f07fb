"""RQ across its supported releases (pyproject.toml: ``rq>=3.0,<4``).

- :func:`callback_names`: a job's callback paths without importing them: RQ 3 keeps them in
  private attributes (``Job._success_callback_name`` ...); elsewhere, ``Job.to_dict()``.
- :class:`SchedulerHook`: a worker's ``work(with_scheduler=True)`` starts the worker's own
  scheduler: RQ 3 starts one in the private ``BaseWorker._start_scheduler``, always an
  ``RQScheduler``; elsewhere RQ's own scheduler runs (a dead worker's scheduler lock then
  frees after RQ's minute, not perfkit's seconds).
- :func:`as_current_job`: ``rq.get_current_job()`` inside an async job run on a worker's
  event loop: RQ 3 keeps the current job in the private context variable
  ``rq.job._current_job`` (which ``Job.perform`` sets); elsewhere it stays None there.
- :func:`finish_job` / :func:`fail_job`: the end of a job run outside ``perform_job`` (an
  async job on :class:`~perfkit.jobs.asyncrunner.AsyncJobWorker`'s loop): RQ 3's
  ``BaseWorker._finalize_success`` / ``_finalize_failure``, the two halves of
  ``perform_job`` (result, callbacks, retries, registries). There is no public way:
  the async worker needs these internals (``INTERNALS``).

Everything else perfkit does with RQ is its public API: ``Job.perform`` and the
``failure_callback`` property (:class:`~perfkit.jobs.allowlist.AllowedJob`),
``Worker.perform_job`` (:class:`~perfkit.jobs.worker.JobWorker`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import rq
import rq.job
from rq.job import Job

VERSION: tuple[int, int] = (
    int(rq.__version__.split(".")[0]),
    int(rq.__version__.split(".")[1]),
)

# The releases whose internals above are known (tested). False takes the public way
# everywhere: the tests run both (tests/jobs/conftest.py's rq_internals).
INTERNALS = (3, 0) <= VERSION < (4, 0)

CALLBACK_KINDS = ("success", "failure", "stopped")


def callback_names(job: Job) -> dict[str, str | None]:
    """The import paths of ``job``'s callbacks by kind (``success``, ``failure``,
    ``stopped``; None: none), read without importing them."""
    if INTERNALS:
        return {kind: getattr(job, f"_{kind}_callback_name") for kind in CALLBACK_KINDS}
    fields = job.to_dict(include_meta=False, include_result=False)
    return {kind: fields.get(f"{kind}_callback_name") or None for kind in CALLBACK_KINDS}


class SchedulerHook:
    """Mixin for an RQ worker class whose ``_start_own_scheduler(burst, logging_level,
    date_format, log_format)`` starts its scheduler in place of RQ's."""

    def _start_own_scheduler(
        self, burst: bool, logging_level: str | None, date_format: str, log_format: str
    ) -> None:
        raise NotImplementedError

    def _start_scheduler(self, *args: Any, **kwargs: Any) -> None:
        if not INTERNALS:  # RQ's own, with whatever arguments this release passes
            super()._start_scheduler(*args, **kwargs)  # type: ignore[misc]
            return
        self._start_own_scheduler(*args, **kwargs)


@contextmanager
def as_current_job(job: Job) -> Iterator[None]:
    """``rq.get_current_job()`` answers ``job`` inside the block (see the module)."""
    current = getattr(rq.job, "_current_job", None) if INTERNALS else None
    if current is None:
        yield
        return
    token = current.set(job)
    try:
        yield
    finally:
        current.reset(token)


ExcInfo = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]


def finish_job(worker: Any, job: Job, queue: Any, execution: Any, return_value: Any) -> None:
    """End a job that returned ``return_value`` as RQ's ``perform_job`` does."""
    worker._finalize_success(job, queue, execution, return_value)


def fail_job(worker: Any, job: Job, queue: Any, execution: Any, exc_info: ExcInfo) -> None:
    """End a job that raised (``exc_info``) as RQ's ``perform_job`` does."""
    worker._finalize_failure(job, queue, execution, exc_info)
