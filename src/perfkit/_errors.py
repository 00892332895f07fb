"""The exceptions perfkit raises, all under one root.

    PerfkitError
    ├── ArgumentError (ValueError)      an argument has a value perfkit cannot use
    │   ├── ConfigError                   a setting or option: raised when it is built
    │   ├── QueryError                    pagination misused (bad cursor, page size, ...)
    │   └── JobArgumentError (JobError)   a job call's argument (delay, retries, priority)
    ├── ArgumentTypeError (TypeError)   an argument, or a value to cache, of a type
    │                                   perfkit cannot use
    ├── CacheError                      the cache could not do what was asked (never a Redis
    │                                   outage: the cache falls back to memory instead)
    ├── JobError                        a job could not be enqueued, found or retried
    │   └── PermanentJobError             a job cannot succeed however often it runs
    │       ├── PayloadError (ValueError)   a job payload failed validation (names the field)
    │       └── JobCancelledError           the running job was canceled (JobService.cancel)
    └── MetricsError                    a metric was registered twice with another type, ...

The rule:

* **Bad input is a ValueError or TypeError.** A value perfkit cannot use raises an
  ``ArgumentError`` subclass (so ``except ValueError`` keeps working), a value of the wrong
  type an ``ArgumentTypeError``; the message names the argument or variable and what it got.
  A part's own error class mixes in where callers already catch it (``QueryError``,
  ``JobArgumentError`` is still a ``JobError``).
* **Configuration fails early.** Settings are checked when :class:`~perfkit.Settings` is
  built (``Settings.from_env()`` names the variable), never later on first use.
* **Run-time failures are the part's error** (``CacheError``, ``JobError``,
  ``MetricsError``), never a bare ``Exception``.
* **Drivers' errors pass through.** Errors that callers already catch from a driver are
  re-raised unchanged (a failing statement raises psycopg's own exception, pool exhaustion
  psycopg_pool's ``PoolTimeout``); a Redis outage is not an error (the cache falls back).
"""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "CacheError",
    "ConfigError",
    "JobArgumentError",
    "JobCancelledError",
    "JobError",
    "MetricsError",
    "PayloadError",
    "PerfkitError",
    "PermanentJobError",
    "QueryError",
]


class PerfkitError(Exception):
    """Root of every exception perfkit defines."""


class ArgumentError(PerfkitError, ValueError):
    """An argument has a value perfkit cannot use; the message names it and what it got."""


class ArgumentTypeError(PerfkitError, TypeError):
    """An argument (or a value to cache) has a type perfkit cannot use."""


class ConfigError(ArgumentError):
    """A setting (environment variable or option) has a value perfkit cannot use."""


class CacheError(PerfkitError):
    """The cache could not do what was asked."""


class QueryError(ArgumentError):
    """The query layer was used in a way it cannot serve (a bad cursor, page or column)."""


class JobError(PerfkitError):
    """A job could not be enqueued, found or retried."""


class JobArgumentError(JobError, ArgumentError):
    """A job call got an argument it cannot use (a negative delay, an unknown priority...)."""


class PermanentJobError(JobError):
    """A job failed in a way no retry can fix; a worker fails it at once, without retries.

    Raise it (or a subclass) from a processor for errors such as a missing template or
    a record that does not exist; other exceptions are retried with the backoff.
    """


class PayloadError(PermanentJobError, ValueError):
    """A job payload failed validation; the message names the field."""


class JobCancelledError(PermanentJobError):
    """The running job was canceled (:meth:`~perfkit.jobs.JobService.cancel`): raised in
    the job by :func:`~perfkit.jobs.check_cancelled`, or in an async job's task. The job
    ends ``canceled``, never retried."""


class MetricsError(PerfkitError):
    """A metric was misused, e.g. registered again with another type."""
