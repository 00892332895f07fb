"""Point-in-time copies of metrics: what the exposition renders and what processes push.

A :class:`MetricSnapshot` holds one metric with all its label sets. The same structs are
encoded with msgspec msgpack (array-like, so field names are not repeated) when a worker
process pushes its metrics to Redis, and :func:`merge` folds the snapshots of several
processes into one list for a single exposition.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Literal

import msgspec
import structlog

from perfkit._histogram import rebucket

__all__ = [
    "GaugeMode",
    "MetricKind",
    "MetricSnapshot",
    "ProcessSnapshot",
    "Sample",
    "merge",
]

MetricKind = Literal["counter", "gauge", "histogram"]
# How a gauge of several processes is combined: summed, the largest, the smallest, the
# mean, or kept apart with a ``process`` label ("all").
GaugeMode = Literal["sum", "max", "min", "mean", "all"]

_log = structlog.get_logger("perfkit.metrics")


class Sample(msgspec.Struct, array_like=True, frozen=True):
    """One label set of a metric.

    ``value`` is the counter or gauge value, or the sum of observations for a histogram,
    whose ``counts`` are per bucket (not cumulative), the last one for ``+Inf``.
    """

    labels: tuple[str, ...]
    value: float
    counts: tuple[int, ...] = ()


class MetricSnapshot(msgspec.Struct, array_like=True, frozen=True):
    """One metric with every label set it has seen."""

    name: str
    kind: MetricKind
    help: str
    labelnames: tuple[str, ...]
    samples: list[Sample]
    bounds: tuple[float, ...] = ()
    mode: GaugeMode = "sum"

    def __post_init__(self) -> None:
        # Also run when decoding another process's push: bytes of the right shape but
        # inconsistent (a label or bucket too many) are refused there, not in merge().
        width = len(self.labelnames)
        buckets = len(self.bounds) + 1 if self.kind == "histogram" else 0
        for sample in self.samples:
            if len(sample.labels) != width or len(sample.counts) != buckets:
                raise ValueError(
                    f"metric {self.name!r}: a sample does not fit its labels or buckets"
                )


class ProcessSnapshot(msgspec.Struct, array_like=True, frozen=True):
    """All metrics of one process at one time, as pushed for multi-process aggregation."""

    process: str
    at: float
    metrics: list[MetricSnapshot]


def _shape(metric: MetricSnapshot) -> tuple[str, tuple[str, ...], str]:
    return (metric.kind, metric.labelnames, metric.mode)


def merge(snapshots: Iterable[ProcessSnapshot]) -> list[MetricSnapshot]:
    """Fold the metrics of several processes into one list (order of first appearance).

    Counters and histograms are summed per label set; gauges are combined by their mode.
    A metric whose type or labels differ from its first appearance (two versions of an app
    during a deploy) is skipped for that process, with a warning. Histograms whose bounds
    differ (a process still on perfkit's old layout) are all moved onto the finest bounds
    seen (:func:`perfkit._histogram.rebucket`) and added: counts and sums stay exact.
    """
    snapshots = list(snapshots)
    first: dict[str, MetricSnapshot] = {}
    bounds: dict[str, tuple[float, ...]] = {}  # the finest seen, per histogram
    for snapshot in snapshots:
        for metric in snapshot.metrics:
            known = first.setdefault(metric.name, metric)
            if _shape(known) == _shape(metric) and len(metric.bounds) > len(
                bounds.get(metric.name, known.bounds)
            ):
                bounds[metric.name] = metric.bounds
    values: dict[str, dict[tuple[str, ...], list[Sample]]] = {
        name: defaultdict(list) for name in first
    }
    for snapshot in snapshots:
        for metric in snapshot.metrics:
            known = first[metric.name]
            onto = bounds.get(metric.name, known.bounds)
            if _shape(known) != _shape(metric):
                _log.warning("metrics.merge_mismatch", metric=metric.name, process=snapshot.process)
                continue
            per_labels = values[metric.name]
            if metric.kind == "gauge" and metric.mode == "all":
                for sample in metric.samples:
                    labels = (*sample.labels, snapshot.process)
                    per_labels[labels].append(Sample(labels, sample.value))
            elif metric.bounds != onto:
                for sample in metric.samples:
                    counts = rebucket(metric.bounds, sample.counts, onto)
                    per_labels[sample.labels].append(Sample(sample.labels, sample.value,
                                                            tuple(counts)))  # fmt: skip
            else:
                for sample in metric.samples:
                    per_labels[sample.labels].append(sample)
    merged = []
    for name, metric in first.items():
        labelnames = metric.labelnames
        if metric.kind == "gauge" and metric.mode == "all":
            labelnames = (*labelnames, "process")
        onto = bounds.get(name, metric.bounds)
        samples = [_combine(metric, onto, labels, group) for labels, group in values[name].items()]
        merged.append(
            MetricSnapshot(
                name=name,
                kind=metric.kind,
                help=metric.help,
                labelnames=labelnames,
                samples=samples,
                bounds=onto,
                mode=metric.mode,
            )
        )
    return merged


def _combine(
    metric: MetricSnapshot, bounds: tuple[float, ...], labels: tuple[str, ...], group: list[Sample]
) -> Sample:
    if metric.kind == "histogram":
        counts = [0] * (len(bounds) + 1)
        total = 0.0
        for sample in group:
            total += sample.value
            for i, count in enumerate(sample.counts):
                counts[i] += count
        return Sample(labels, total, tuple(counts))
    numbers = [sample.value for sample in group]
    if metric.kind == "counter" or metric.mode in ("sum", "all"):
        return Sample(labels, sum(numbers))
    if metric.mode == "max":
        return Sample(labels, max(numbers))
    if metric.mode == "min":
        return Sample(labels, min(numbers))
    return Sample(labels, sum(numbers) / len(numbers))
