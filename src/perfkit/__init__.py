"""perfkit: backend performance primitives (cache, queries, jobs, metrics, admin).

The parts live in their subpackages: :mod:`perfkit.cache`, :mod:`perfkit.queries`,
:mod:`perfkit.jobs`, :mod:`perfkit.metrics`, :mod:`perfkit.http` (the ASGI/WSGI
middleware), :mod:`perfkit.admin`. This package exports
the settings, the exception tree they share, and :class:`Perfkit`, which wires the parts
together and serves the admin API.
"""

import typing as _typing

from perfkit import _errors
from perfkit._errors import *  # noqa: F403 (the exception tree, as _errors.__all__ lists it)
from perfkit.settings import Settings

if _typing.TYPE_CHECKING:
    from perfkit.kit import Perfkit

__version__ = "0.1.0"

__all__ = ["Perfkit", "Settings", "__version__"]
__all__ += _errors.__all__
__all__.sort()  # sorted, as every package's (tests/test_exported_members.py)


def __getattr__(name: str) -> _typing.Any:
    # Perfkit is imported on first use: it pulls in every part (rq, psycopg, admin), which
    # an app or worker that only uses perfkit.cache should not pay for at start-up.
    if name == "Perfkit":
        from perfkit.kit import Perfkit

        return Perfkit
    raise AttributeError(f"module 'perfkit' has no attribute {name!r}")
