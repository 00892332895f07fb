"""perfkit: backend performance primitives (cache, queries, jobs, metrics, admin).

The parts live in their subpackages: :mod:`perfkit.cache`, :mod:`perfkit.queries`,
:mod:`perfkit.jobs`, :mod:`perfkit.metrics`. This package exports the settings and
the exception tree they share.
"""

from perfkit._errors import (
    CacheError,
    ConfigError,
    JobError,
    MetricsError,
    PayloadError,
    PerfkitError,
    QueryError,
)
from perfkit.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "CacheError",
    "ConfigError",
    "JobError",
    "MetricsError",
    "PayloadError",
    "PerfkitError",
    "QueryError",
    "Settings",
    "__version__",
]
