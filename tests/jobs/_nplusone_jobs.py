"""A job with an N+1, run by the N+1 tests' worker (tests/jobs/test_nplusone.py)."""

from __future__ import annotations

from perfkit.queries import TimedPool


def load_names(database_url: str) -> int:
    """One statement per row of a series, twelve times the same shape."""
    with TimedPool(database_url, min_size=1, max_size=1) as pool, pool.connection() as conn:
        for i in range(12):
            conn.execute("SELECT %s::int AS id", (i,))  # N+1 job
    return 12
