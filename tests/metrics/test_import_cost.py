"""Importing the metrics or the HTTP middleware costs what they use: not psycopg, its pool
or perfkit.queries (~200 ms), which only the statement statistics and the fleet need."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DATABASE_MODULES = ("psycopg", "psycopg_pool", "perfkit.queries")


def loaded_after(statement: str) -> list[str]:
    """The database modules in ``sys.modules`` after ``statement``, in a fresh interpreter."""
    code = (
        f"import json, sys\n{statement}\n"
        f"print(json.dumps(sorted(m for m in {DATABASE_MODULES!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout))


@pytest.mark.parametrize("module", ["perfkit.metrics", "perfkit.http"])
def test_importing_leaves_the_database_modules_out(module: str) -> None:
    assert loaded_after(f"import {module}") == []


def test_a_monitor_scraped_and_reported_without_a_database_leaves_them_out() -> None:
    # The N+1 metric and advice read the detector only once perfkit.queries is in use.
    statement = (
        "from perfkit.metrics import PerformanceMonitor\n"
        "monitor = PerformanceMonitor()\n"
        "assert 'perfkit_db_n_plus_one_total' in monitor.exposition()\n"
        "monitor.report()"
    )
    assert loaded_after(statement) == []


def test_the_check_sees_them_when_they_are_imported() -> None:
    assert loaded_after("import perfkit.metrics.fleet") == sorted(DATABASE_MODULES)
