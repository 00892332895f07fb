"""The exceptions perfkit raises, all under one root.

    PerfkitError
    ├── ConfigError          a setting or argument has a value perfkit cannot use
    ├── CacheError           the cache could not do what was asked (never a Redis outage:
    │                        the cache falls back to memory instead of raising)
    ├── QueryError           the query layer was misused (bad pagination cursor, ...)
    ├── JobError             a job could not be enqueued, found or retried
    │   └── PermanentJobError  a job cannot succeed however often it runs: no retries
    │       └── PayloadError     a job payload failed validation (names the field)
    └── MetricsError         a metric was registered twice with another type, ...

Errors that callers already catch from a driver are re-raised unchanged (a failing
statement raises psycopg's own exception, pool exhaustion psycopg_pool's ``PoolTimeout``).
Values that cannot be serialized raise the builtin ``TypeError``.
"""

from __future__ import annotations

__all__ = [
    "CacheError",
    "ConfigError",
    "JobError",
    "MetricsError",
    "PayloadError",
    "PerfkitError",
    "PermanentJobError",
    "QueryError",
]


class PerfkitError(Exception):
    """Root of every exception perfkit defines."""


class ConfigError(PerfkitError, ValueError):
    """A setting (environment variable or argument) has a value perfkit cannot use."""


class CacheError(PerfkitError):
    """The cache could not do what was asked."""


class QueryError(PerfkitError):
    """The query layer was used in a way it cannot serve."""


class JobError(PerfkitError):
    """A job could not be enqueued, found or retried."""


class PermanentJobError(JobError):
    """A job failed in a way no retry can fix; a worker fails it at once, without retries.

    Raise it (or a subclass) from a processor for errors such as a missing template or
    a record that does not exist; other exceptions are retried with the backoff.
    """


class PayloadError(PermanentJobError, ValueError):
    """A job payload failed validation; the message names the field."""


class MetricsError(PerfkitError):
    """A metric was misused, e.g. registered again with another type."""
