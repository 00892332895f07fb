"""What a perfkit worker agrees to call: registered processors and allowed modules only.

An RQ job names its function by import path and RQ imports and calls whatever it
names, so anyone who can write to the queues' Redis could make a worker run
``os.system``. A perfkit worker (its job class, :class:`AllowedJob`) refuses before
importing anything unless the path is

- a registered :func:`~perfkit.jobs.processor` (any module), or
- a function *defined in* a module allowed with :func:`allow_jobs` (``perfkit worker
  --import MODULE`` or ``--allow MODULE``), or a function path allowed by name.

A refused job fails at once (:class:`~perfkit.PermanentJobError`, no retries) and is
listed with the reason in the failed jobs; its function and its callbacks are never
imported or called. Widen the list deliberately with ``allow_jobs("myapp.tasks")``
(every function defined in ``myapp.tasks``) or ``allow_jobs("myapp.tasks.rebuild")``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any

from rq.exceptions import DeserializationError
from rq.job import Job

from perfkit import _defaults
from perfkit._acompat import resolve
from perfkit._compat.rq import as_current_job, callback_names
from perfkit._errors import ConfigError, JobCancelledError, PermanentJobError
from perfkit.jobs.binding import call_mismatch
from perfkit.jobs.cancel import is_cancel_requested
from perfkit.jobs.processor import processor_at
from perfkit.jobs.progress import running

__all__ = ["AllowedJob", "allow_jobs", "allowed_jobs", "is_refused", "refusal"]

_names: _defaults.Slot[set[str]] = _defaults.slot("jobs.allowlist", set, declaration=True)


def allow_jobs(*names: str) -> None:
    """Let workers of this process run every function defined in these modules, or
    these function paths (``"myapp.tasks"``, ``"myapp.tasks.rebuild"``)."""
    for name in names:
        if not name or any(not part.isidentifier() for part in name.split(".")):
            raise ConfigError(f"allow_jobs: {name!r} is not a dotted module or function path")
    _names.value.update(names)


def allowed_jobs() -> frozenset[str]:
    """The module and function paths allowed with :func:`allow_jobs` (processors aside)."""
    return frozenset(_names.value)


def _allowed(path: str) -> bool:
    if processor_at(path) is not None or path in _names.value:
        return True
    module_name, _, attribute = path.rpartition(".")
    if module_name not in _names.value:
        return False
    # An allowed module may be imported: the operator named it.
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    # Defined there, not merely imported there (``from os import system`` in an allowed
    # module must not open os.system).
    found = getattr(module, attribute, None)
    return inspect.isfunction(found) and found.__module__ == module_name


def refusal(job: Job) -> str | None:
    """Why a worker must not run ``job`` (None: it may)."""
    try:
        path = job.func_name
    except DeserializationError:
        return f"job {job.id}: its call does not decode, so it names nothing that may run"
    if job.instance is not None:
        return f"job {job.id} names a method of an instance ({path!r}); perfkit runs functions only"
    if path is None or not _allowed(path):
        return (
            f"job {job.id} names {path!r}, which is neither a registered processor nor a "
            "function of an allowed module (perfkit worker --import/--allow, "
            "perfkit.jobs.allow_jobs): refused without calling it"
        )
    for kind, callback in callback_names(job).items():
        if callback and not _allowed(callback):
            return f"job {job.id} names the {kind} callback {callback!r}, which is not allowed"
    webhooks = getattr(job, "webhooks", None)  # RQ 3's: sent when the job ends
    if webhooks:
        # RQ would send the job's failure, traceback included, to URLs read from Redis.
        return f"job {job.id} carries {len(webhooks)} webhook(s); perfkit workers send none"
    return None


def is_refused(job: Job) -> bool:
    """Whether :func:`refusal` refuses ``job`` (a job that does not decode is)."""
    try:
        return refusal(job) is not None
    except Exception:  # data that does not decode names nothing that may be called
        return True


class AllowedJob(Job):
    """RQ's Job, whose every name passes :func:`refusal` before RQ resolves it, and that
    starts only if it was not canceled.

    RQ resolves a job's names in several places: the function when it runs, the success,
    failure and stopped callbacks when it ends (or when a worker's clean-up finds it
    abandoned, with an expired ``rq:wip:<queue>`` entry), and it sends the job's webhooks
    when it ends. Each of those reads one of the properties below, so each passes the
    same check. Dependents and retries are jobs of their own, checked when they run.
    """

    # Set by admit() when it refuses the job (the job metrics count it apart).
    refused = False

    def admit(self) -> None:
        """Raise unless the job may start: a refused job, or one whose arguments do not fit
        its function (:func:`~perfkit.jobs.binding.call_mismatch`), raises
        :class:`~perfkit.PermanentJobError` without running anything (a refused one
        without importing anything it names); a canceled one
        :class:`~perfkit.JobCancelledError` (it then ends ``canceled``)."""
        reason = refusal(self)
        if reason is not None:
            self.refused = True
            raise PermanentJobError(reason)
        if is_cancel_requested(self.connection, self.id):
            raise JobCancelledError(f"job {self.id} was canceled before it started")
        mismatch = call_mismatch(self, self.func)
        if mismatch is not None:
            raise PermanentJobError(mismatch)

    def perform(self) -> Any:
        """RQ's, after :meth:`admit`."""
        self.admit()
        with running(self):  # report_progress() finds it
            return super().perform()

    @property
    def func(self) -> Any:
        reason = refusal(self)
        if reason is not None:
            raise PermanentJobError(reason)
        return super().func

    @property
    def success_callback(self) -> Any:
        return None if is_refused(self) else super().success_callback

    async def perform_async(self) -> Any:
        """:meth:`perform` for an async function, awaited on the running event loop (RQ's
        ``perform`` would start a loop of its own)."""
        self.admit()
        with as_current_job(self), running(self):
            return await resolve(self.func(*self.args, **self.kwargs))

    @property
    def failure_callback(self) -> Any:
        # RQ calls a failed job's failure callback, a refused job's too: never a forged one.
        return None if is_refused(self) else super().failure_callback

    @property
    def stopped_callback(self) -> Any:
        return None if is_refused(self) else super().stopped_callback

    def send_webhooks(self, status: Any, *, exc_string: str | None = None) -> None:
        """RQ's, for a job that is not refused (one carrying webhooks always is)."""
        if not is_refused(self):
            super().send_webhooks(status, exc_string=exc_string)
