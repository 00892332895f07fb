"""perfkit: backend performance primitives (cache, queries, jobs, metrics, admin).

The parts live in their subpackages: :mod:`perfkit.cache`, :mod:`perfkit.queries`,
:mod:`perfkit.jobs`, :mod:`perfkit.metrics`, :mod:`perfkit.admin`. This package exports
the settings, the exception tree they share, and :class:`Perfkit`, which wires the parts
together and serves the admin API.
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
from perfkit.kit import Perfkit
from perfkit.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "CacheError",
    "ConfigError",
    "JobError",
    "MetricsError",
    "PayloadError",
    "Perfkit",
    "PerfkitError",
    "QueryError",
    "Settings",
    "__version__",
]
