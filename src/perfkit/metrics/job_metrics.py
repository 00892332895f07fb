"""The job metrics recorded by the workers (:mod:`perfkit.jobs._metrics`) as metric
snapshots, for the exposition.

They are read from Redis, where every worker adds to the same totals: they are the
fleet's already, and join the exposition beside the fleet view's metrics (never inside a
process's registry, which the fleet view would sum once per process).
"""

from __future__ import annotations

from perfkit.jobs._metrics import HELP, LABELS, TOTAL, Series
from perfkit.metrics.snapshot import MetricSnapshot, Sample

__all__ = ["job_snapshots"]

_INF = float("inf")


def _histogram(name: str, series: list[Series]) -> MetricSnapshot:
    # Buckets by upper bound: the union of every series' bounds, so series recorded with
    # other bounds (an older worker) still render.
    bounds = tuple(sorted({bound for found in series for bound in found.buckets} - {_INF}))
    samples = [
        Sample(
            found.labels,
            found.value,
            tuple(found.buckets.get(bound, 0) for bound in (*bounds, _INF)),
        )
        for found in series
    ]
    return MetricSnapshot(name, "histogram", HELP[name], LABELS[name], samples, bounds)


def job_snapshots(series: list[Series]) -> list[MetricSnapshot]:
    """The three job metrics (each present, with or without samples)."""
    by_name: dict[str, list[Series]] = {name: [] for name in HELP}
    for item in series:
        by_name[item.name].append(item)
    snapshots = []
    for name, items in by_name.items():
        if name == TOTAL:
            samples = [Sample(item.labels, item.value) for item in items]
            snapshots.append(MetricSnapshot(name, "counter", HELP[name], LABELS[name], samples))
        else:
            snapshots.append(_histogram(name, items))
    return snapshots
