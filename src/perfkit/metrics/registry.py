"""A thread-safe, bounded registry of counters, gauges and histograms.

Recording is the hot path: a child (one label set) is resolved once with ``labels()`` and
kept; ``observe`` is a ``bisect`` on a fixed tuple of bounds plus one short lock (209
bounds by default: eight comparisons). Memory is
bounded: buckets are fixed at registration, and each metric keeps at most
``max_label_sets`` label sets; further ones all land on one child whose label values are
:data:`OVERFLOW`, so a path full of ids cannot grow the registry without end.
"""

from __future__ import annotations

import math
import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

import structlog

from perfkit._errors import ConfigError, MetricsError
from perfkit._histogram import DEFAULT_BOUNDS
from perfkit.metrics.exposition import render
from perfkit.metrics.snapshot import GaugeMode, MetricKind, MetricSnapshot, Sample

__all__ = [
    "DEFAULT_BUCKETS",
    "OVERFLOW",
    "Collector",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "MetricsRegistry",
]

# perfkit's one bucket layout, in seconds: 50 µs to ~56 min, 8 per doubling, so a
# quantile is known to within 9.05 % (perfkit._histogram). Exposed to Prometheus with one
# ``le`` per doubling (perfkit.metrics.exposition).
DEFAULT_BUCKETS: tuple[float, ...] = DEFAULT_BOUNDS
# The label value every label takes once a metric has reached its cap of label sets.
OVERFLOW = "__overflow__"

Collector = Callable[[], Iterable[MetricSnapshot]]
"""A callable run at every snapshot, returning metrics computed at that moment."""

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABELS = frozenset({"le", "quantile"})

_log = structlog.get_logger("perfkit.metrics")


class _Number:
    """What a counter's and a gauge's children hold: one number, and the lock its
    read-modify-write updates take (``+=`` on a float is not atomic across threads)."""

    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._value = 0.0
        self._lock = threading.Lock()

    @property
    def value(self) -> float:
        """The current value (a counter's total)."""
        return self._value

    def _sample(self, labels: tuple[str, ...]) -> Sample:
        return Sample(labels, self._value)


class CounterChild(_Number):
    """One label set of a counter."""

    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (must not be negative)."""
        if amount < 0:
            raise MetricsError(f"a counter only goes up; inc({amount}) is negative")
        with self._lock:
            self._value += amount


class GaugeChild(_Number):
    """One label set of a gauge."""

    __slots__ = ()

    def set(self, value: float) -> None:
        """Set the gauge to ``value``."""
        self._value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount``."""
        with self._lock:
            self._value += amount

    def dec(self, amount: float = 1.0) -> None:
        """Subtract ``amount``."""
        with self._lock:
            self._value -= amount


class HistogramChild:
    """One label set of a histogram with fixed buckets."""

    __slots__ = ("_bounds", "_counts", "_lock", "_sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        # One count per bound plus the +Inf bucket; cumulated only when rendered.
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        """Record one observation (seconds, bytes, ...)."""
        # bisect_left gives the first bound >= value: Prometheus' ``le`` is inclusive.
        i = bisect_left(self._bounds, value)
        with self._lock:
            self._counts[i] += 1
            self._sum += value

    @property
    def count(self) -> int:
        """How many observations were recorded."""
        return sum(self._counts)

    @property
    def sum(self) -> float:
        """The sum of all observations."""
        return self._sum

    def _sample(self, labels: tuple[str, ...]) -> Sample:
        with self._lock:
            return Sample(labels, self._sum, tuple(self._counts))


ChildT = TypeVar("ChildT", CounterChild, GaugeChild, HistogramChild)


class _Metric(Generic[ChildT]):
    """What counters, gauges and histograms share: labels, the cap, the snapshot."""

    kind: MetricKind

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: tuple[str, ...],
        max_label_sets: int,
        factory: Callable[[], ChildT],
    ) -> None:
        self.name = name
        self.help = help
        self.labelnames = labelnames
        self._max_label_sets = max_label_sets
        self._factory: Callable[[], ChildT] = factory
        self._children: dict[tuple[str, ...], ChildT] = {}
        self._lock = threading.Lock()
        self._overflow_key = (OVERFLOW,) * len(labelnames)
        self._bounds: tuple[float, ...] = ()
        self._mode: GaugeMode = "sum"

    def labels(self, *values: object, **by_name: object) -> ChildT:
        """The child for one label set, by position or by name; keep it for hot paths.

        Once the metric holds ``max_label_sets`` label sets, a new one returns the
        shared overflow child (every label value :data:`OVERFLOW`).
        """
        if by_name:
            if values:
                raise MetricsError(f"{self.name}: give label values by position or by name")
            try:
                values = tuple(by_name[name] for name in self.labelnames)
            except KeyError as exc:
                raise MetricsError(f"{self.name}: missing label {exc.args[0]!r}") from exc
            if len(by_name) != len(self.labelnames):
                unknown = sorted(set(by_name) - set(self.labelnames))
                raise MetricsError(f"{self.name}: unknown labels {unknown}")
        if len(values) != len(self.labelnames):
            raise MetricsError(
                f"{self.name} takes labels {list(self.labelnames)}, got {len(values)} values"
            )
        key = tuple(str(value) for value in values)
        child = self._children.get(key)
        if child is not None:
            return child
        with self._lock:
            child = self._children.get(key)
            if child is None:
                if len(self._children) >= self._max_label_sets:
                    key = self._overflow_key
                    child = self._children.get(key)
                if child is None:
                    child = self._factory()
                    self._children[key] = child
        return child

    def _unlabelled(self) -> ChildT:
        if self.labelnames:
            raise MetricsError(f"{self.name} has labels {list(self.labelnames)}: use labels()")
        return self.labels()

    def snapshot(self) -> MetricSnapshot:
        """A copy of every label set's current value."""
        # list() of a dict view runs in C without releasing the GIL: a consistent copy.
        items = list(self._children.items())
        return MetricSnapshot(
            name=self.name,
            kind=self.kind,
            help=self.help,
            labelnames=self.labelnames,
            samples=[child._sample(labels) for labels, child in items],
            bounds=self._bounds,
            mode=self._mode,
        )

    def clear(self) -> None:
        """Forget every label set (their values start again from zero)."""
        with self._lock:
            self._children.clear()


class Counter(_Metric[CounterChild]):
    """A value that only goes up (requests, errors)."""

    kind: MetricKind = "counter"

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` to a counter without labels."""
        self._unlabelled().inc(amount)


class Gauge(_Metric[GaugeChild]):
    """A value that goes up and down (in-flight requests, memory)."""

    kind: MetricKind = "gauge"

    def set(self, value: float) -> None:
        """Set a gauge without labels."""
        self._unlabelled().set(value)

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` to a gauge without labels."""
        self._unlabelled().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        """Subtract ``amount`` from a gauge without labels."""
        self._unlabelled().dec(amount)


class Histogram(_Metric[HistogramChild]):
    """Observations counted into fixed buckets (response times, sizes)."""

    kind: MetricKind = "histogram"

    @property
    def bounds(self) -> tuple[float, ...]:
        """The upper bounds of the buckets, without ``+Inf``."""
        return self._bounds

    def observe(self, value: float) -> None:
        """Record one observation on a histogram without labels."""
        self._unlabelled().observe(value)


MetricT = TypeVar("MetricT", Counter, Gauge, Histogram)
AnyMetric = Counter | Gauge | Histogram


class MetricsRegistry:
    """Counters, gauges and histograms with labels, plus collectors, in one exposition.

    ``max_label_sets`` caps the label sets of each metric (see :data:`OVERFLOW`).
    Registering a name again returns the existing metric when type, labels and buckets
    agree, and raises :class:`~perfkit.MetricsError` when they do not.
    """

    def __init__(self, *, max_label_sets: int = 500) -> None:
        if max_label_sets < 1:
            raise ConfigError(f"max_label_sets must be at least 1, got {max_label_sets}")
        self.max_label_sets = max_label_sets
        self._metrics: dict[str, AnyMetric] = {}
        self._collectors: list[Collector] = []
        self._lock = threading.Lock()

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        """Register (or get back) a counter."""
        return self._register(Counter, name, help, labelnames, (), "sum")

    def gauge(
        self, name: str, help: str, labelnames: Sequence[str] = (), *, mode: GaugeMode = "sum"
    ) -> Gauge:
        """Register (or get back) a gauge; ``mode`` says how processes are combined."""
        return self._register(Gauge, name, help, labelnames, (), mode)

    def histogram(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        """Register (or get back) a histogram with fixed bucket upper bounds."""
        bounds = tuple(float(b) for b in buckets if not math.isinf(b))
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ConfigError(f"{name}: buckets must be increasing and not empty, got {buckets}")
        return self._register(Histogram, name, help, labelnames, bounds, "sum")

    def _register(
        self,
        cls: type[MetricT],
        name: str,
        help: str,
        labelnames: Sequence[str],
        bounds: tuple[float, ...],
        mode: GaugeMode,
    ) -> MetricT:
        labels = tuple(labelnames)
        _check_names(name, labels)
        with self._lock:
            existing = self._metrics.get(name)
            if existing is not None:
                if not isinstance(existing, cls):
                    raise MetricsError(
                        f"metric {name!r} is already registered as a {existing.kind}, "
                        f"not a {cls.kind}"
                    )
                if existing.labelnames != labels or existing._bounds != bounds:
                    raise MetricsError(
                        f"metric {name!r} is already registered with labels "
                        f"{list(existing.labelnames)} and buckets {list(existing._bounds)}"
                    )
                return existing
            factory: Callable[[], object]
            if cls is Histogram:
                factory = lambda: HistogramChild(bounds)  # noqa: E731
            elif cls is Counter:
                factory = CounterChild
            else:
                factory = GaugeChild
            metric = cls(name, help, labels, self.max_label_sets, factory)  # type: ignore[arg-type]
            metric._bounds = bounds
            metric._mode = mode
            self._metrics[name] = metric
            return metric

    def get(self, name: str) -> Counter | Gauge | Histogram | None:
        """The metric registered under ``name``, if any."""
        return self._metrics.get(name)

    def unregister(self, name: str) -> None:
        """Remove a metric (no error when it is not there)."""
        with self._lock:
            self._metrics.pop(name, None)

    def register_collector(self, collector: Collector) -> None:
        """Add a callable whose metrics join every snapshot (run at snapshot time)."""
        with self._lock:
            if collector not in self._collectors:
                self._collectors.append(collector)

    def unregister_collector(self, collector: Collector) -> None:
        """Remove a collector added with :meth:`register_collector`."""
        with self._lock:
            if collector in self._collectors:
                self._collectors.remove(collector)

    def collectors(self) -> list[Collector]:
        """The collectors registered, in order."""
        with self._lock:
            return list(self._collectors)

    def snapshot(self) -> list[MetricSnapshot]:
        """Every metric and collector output, as of now.

        A collector that raises is logged and left out, so one broken source (a cache
        service mid-outage) never breaks the whole exposition.
        """
        with self._lock:
            metrics = list(self._metrics.values())
            collectors = list(self._collectors)
        result = [metric.snapshot() for metric in metrics]
        for collector in collectors:
            try:
                result.extend(collector())
            except Exception as exc:
                _log.warning("metrics.collector_failed", collector=repr(collector), error=repr(exc))
        return result

    def exposition(self, *, openmetrics: bool = False) -> str:
        """The Prometheus text format (0.0.4), or OpenMetrics 1.0, of the whole registry."""
        return render(self.snapshot(), openmetrics=openmetrics)


def _check_names(name: str, labelnames: tuple[str, ...]) -> None:
    if not _NAME.match(name):
        raise ConfigError(f"invalid metric name {name!r}")
    for label in labelnames:
        if not _LABEL.match(label) or label.startswith("__") or label in _RESERVED_LABELS:
            raise ConfigError(f"{name}: invalid label name {label!r}")
    if len(set(labelnames)) != len(labelnames):
        raise ConfigError(f"{name}: duplicate label names {list(labelnames)}")
