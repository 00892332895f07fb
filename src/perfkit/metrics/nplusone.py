"""N+1 findings as metrics and advice (the detection is ``perfkit.queries._nplusone``)."""

from __future__ import annotations

from perfkit.metrics.snapshot import MetricSnapshot, Sample
from perfkit.queries import get_n_plus_one_detector

__all__ = ["n_plus_one_metrics"]


def n_plus_one_metrics() -> list[MetricSnapshot]:
    """``perfkit_db_n_plus_one_total{route}``: the process detector's findings per route
    (or job), counted when their unit of work ended."""
    samples = [
        Sample((route,), float(count))
        for route, count in sorted(get_n_plus_one_detector().by_route().items())
    ]
    return [
        MetricSnapshot(
            "perfkit_db_n_plus_one_total",
            "counter",
            "Statement shapes repeated at least N_PLUS_ONE_THRESHOLD times in one request or job.",
            ("route",),
            samples,
        )
    ]
