"""The job metrics recorded by the workers (:mod:`perfkit.jobs._metrics`) as metric
snapshots, for the exposition.

They are read from Redis, where every worker adds to the same totals: they are the
fleet's already, and join the exposition beside the fleet view's metrics (never inside a
process's registry, which the fleet view would sum once per process).
"""

from __future__ import annotations

from perfkit._histogram import rebucket
from perfkit.jobs._metrics import BOUNDS, HELP, LABELS, TOTAL, Series
from perfkit.metrics.snapshot import MetricSnapshot, Sample

__all__ = ["job_snapshots"]

_INF = float("inf")


def _histogram(name: str, series: list[Series]) -> MetricSnapshot:
    # Buckets are stored by upper bound: moved onto perfkit's layout, so a series recorded
    # with other bounds (an older worker) still renders, each count never moved down.
    samples = []
    for found in series:
        stored = sorted(bound for bound in found.buckets if bound != _INF)
        counts = [found.buckets[bound] for bound in stored] + [found.buckets.get(_INF, 0)]
        samples.append(Sample(found.labels, found.value, tuple(rebucket(stored, counts, BOUNDS))))
    return MetricSnapshot(name, "histogram", HELP[name], LABELS[name], samples, BOUNDS)


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
