"""psycopg_pool across its supported releases (3.2 and 3.3 known; pyproject.toml:
``psycopg-pool>=3.2``).

- :func:`add_usage_ms`: perfkit's checkout (``TimedPool.connection()``, a plain class, about
  6,800 instructions cheaper than psycopg_pool's generator) adds the time a connection was
  lent out to the pool's private ``_stats[_USAGE_MS]``, which ``get_stats()`` reports as
  ``usage_ms``. Where :data:`INTERNALS` is off, the pools hand out psycopg_pool's own
  ``connection()``, which counts it itself.
- :class:`CappedReconnect`: a pool's reconnection attempts back off at most
  ``reconnect_max_delay`` s apart, by giving psycopg_pool's private ``_add_connection`` its
  first ``AttemptWithBackoff`` (``psycopg_pool.base``, not exported). Where :data:`INTERNALS`
  is off: psycopg_pool's own backoff (1, 2, 4 ... s: a pool can stay empty for seconds after
  its server is back).
"""

from __future__ import annotations

from typing import Any

import psycopg_pool
from psycopg_pool.base import AttemptWithBackoff

VERSION: tuple[int, int] = (
    int(psycopg_pool.__version__.split(".")[0]),
    int(psycopg_pool.__version__.split(".")[1]),
)

# The releases whose internals above are known (tested). False takes the public way: the
# tests of the pools run both (tests/queries/conftest.py's pool_internals).
INTERNALS = (3, 2) <= VERSION < (3, 4)


def add_usage_ms(pool: Any, ms: int) -> None:
    """Count ``ms`` more of connection use in ``pool.get_stats()["usage_ms"]``, as
    psycopg_pool's ``connection()`` does (only where :data:`INTERNALS`)."""
    pool._stats[pool._USAGE_MS] += ms


class _CappedBackoff(AttemptWithBackoff):
    """psycopg_pool's reconnection backoff, its delay capped at ``max_delay``."""

    def __init__(self, *, timeout: float, max_delay: float) -> None:
        super().__init__(timeout=timeout)
        self.max_delay = max_delay

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, self.max_delay)


class CappedReconnect:
    """Mixin for a psycopg_pool pool class (sync or async) whose ``reconnect_max_delay``
    caps the pause between two attempts to reconnect."""

    reconnect_timeout: float  # psycopg_pool's

    @property
    def reconnect_max_delay(self) -> float:
        """The longest pause between two reconnection attempts (the pool class says)."""
        raise NotImplementedError

    # Not async: the async pool awaits the coroutine its base returns.
    def _add_connection(self, attempt: Any, *args: Any, **kwargs: Any) -> Any:
        if attempt is None and INTERNALS:  # None: a first attempt, with psycopg_pool's backoff
            attempt = _CappedBackoff(
                timeout=self.reconnect_timeout, max_delay=self.reconnect_max_delay
            )
        return super()._add_connection(attempt, *args, **kwargs)  # type: ignore[misc]
