"""N+1 findings as metrics and advice (the detection is ``perfkit.queries._nplusone``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from perfkit.metrics.snapshot import MetricSnapshot, Sample

if TYPE_CHECKING:
    from perfkit.queries import NPlusOneDetector

__all__ = ["n_plus_one_detector", "n_plus_one_metrics"]


def n_plus_one_detector() -> NPlusOneDetector | None:
    """The process's N+1 detector, or ``None`` while :mod:`perfkit.queries` is not imported.

    Nothing can have been found then: statements are counted by perfkit's pools and
    integrations, and a finding (an ``NPlusOne``) is a ``perfkit.queries`` type. So an app
    without a database is not made to import psycopg (~200 ms) by a scrape or a report.
    """
    if "perfkit.queries" not in sys.modules:
        return None
    from perfkit.queries import get_n_plus_one_detector

    return get_n_plus_one_detector()


def n_plus_one_metrics() -> list[MetricSnapshot]:
    """``perfkit_db_n_plus_one_total{route}``: the process detector's findings per route
    (or job), counted when their unit of work ended."""
    detector = n_plus_one_detector()
    found = detector.by_route() if detector is not None else {}
    samples = [Sample((route,), float(count)) for route, count in sorted(found.items())]
    return [
        MetricSnapshot(
            "perfkit_db_n_plus_one_total",
            "counter",
            "Statement shapes repeated at least N_PLUS_ONE_THRESHOLD times in one request or job.",
            ("route",),
            samples,
        )
    ]
