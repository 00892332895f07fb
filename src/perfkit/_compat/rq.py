"""RQ across its supported releases (pyproject.toml: ``rq>=3.0,<4``).

- :func:`callback_names`: a job's callback paths without importing them: RQ 3 keeps them in
  private attributes (``Job._success_callback_name`` ...); elsewhere, ``Job.to_dict()``.
- :class:`SchedulerHook`: a worker's ``work(with_scheduler=True)`` starts the worker's own
  scheduler: RQ 3 starts one in the private ``BaseWorker._start_scheduler``, always an
  ``RQScheduler``; elsewhere RQ's own scheduler runs (a dead worker's scheduler lock then
  frees after RQ's minute, not perfkit's seconds).

Everything else perfkit does with RQ is its public API: ``Job.perform`` and the
``failure_callback`` property (:class:`~perfkit.jobs.allowlist.AllowedJob`),
``Worker.perform_job`` (:class:`~perfkit.jobs.worker.JobWorker`).
"""

from __future__ import annotations

from typing import Any

import rq
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
