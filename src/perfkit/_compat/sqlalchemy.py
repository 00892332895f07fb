"""SQLAlchemy across its supported releases (pyproject.toml extra: ``sqlalchemy>=2.0``).

- :func:`max_overflow`: a ``QueuePool`` keeps its overflow limit only in the private
  ``_max_overflow`` (no public reader in 2.0-2.1). Elsewhere 0: the pool's ``max_size`` in
  perfkit's stats is then its ``size()``, its overflow connections uncounted.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy

VERSION: tuple[int, int] = (
    int(sqlalchemy.__version__.split(".")[0]),
    int(sqlalchemy.__version__.split(".")[1]),
)

# The releases whose internals above are known (tested). False: the public way, which the
# tests run too (tests/contrib/test_sqlalchemy.py).
INTERNALS = (2, 0) <= VERSION < (2, 2)


def max_overflow(pool: Any) -> int:
    """How many connections ``pool`` may open beyond its size (0 for pools without one)."""
    if not INTERNALS:
        return 0
    return max(int(getattr(pool, "_max_overflow", 0)), 0)
