"""Gauges from the stats of the other parts (cache, query pool, jobs), read duck-typed.

A :class:`StatsCollector` fetches a msgspec Struct (or a mapping of them, e.g. one per
queue) and turns every numeric field into a gauge named ``<prefix>_<field>``. It never
imports the other subpackages, so they can add fields and the gauges follow.

Fetching may do I/O (the cache asks Redis for INFO), so it is separate from collecting:
:meth:`StatsCollector.refresh` (sync source) or ``await`` :meth:`StatsCollector.arefresh`
(async source) stores the latest value, and the registry renders that value.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import msgspec

from perfkit._errors import MetricsError
from perfkit.metrics.snapshot import GaugeMode, MetricSnapshot, Sample

__all__ = ["CacheSource", "JobsSource", "PoolSource", "StatsCollector"]


class CacheSource(Protocol):
    """What a cache service offers (``perfkit.cache``): ``metrics()`` returns a Struct."""

    def metrics(self) -> Any: ...


class PoolSource(Protocol):
    """What a timed pool offers (``perfkit.queries``): ``get_stats()`` returns a Struct."""

    def get_stats(self) -> Any: ...


class JobsSource(Protocol):
    """What the job service offers (``perfkit.jobs``): ``stats()``, one Struct per queue."""

    def stats(self) -> Any: ...


# How cache gauges combine across processes: per-process counters add up, values read
# from the one shared Redis server do not.
CACHE_MODES: dict[str, GaugeMode] = {
    "hit_rate": "mean",
    "avg_latency_ms": "mean",
    "p95_latency_ms": "max",
    "fallback_active": "max",
    "fallback_since": "min",
    "used_memory": "max",
    "keys": "max",
    "connected_clients": "max",
}


class StatsCollector:
    """Gauges ``<prefix>_<field>`` for the numeric fields of what ``fetch`` returns.

    ``fetch`` returns a msgspec Struct, a mapping of label value -> Struct, a list of
    Structs whose ``label`` field names them (the job service's one per queue), or an
    awaitable of any of these. Nested Structs become ``<prefix>_<field>_<sub>``.
    ``modes`` says how a field's gauge combines across processes (default ``"sum"``).
    """

    def __init__(
        self,
        prefix: str,
        fetch: Callable[[], Any],
        *,
        label: str = "queue",
        modes: Mapping[str, GaugeMode] | None = None,
        help: str = "",
    ) -> None:
        self.prefix = prefix
        self.fetch = fetch
        self.label = label
        self.modes = dict(modes or {})
        self.help = help or f"From {prefix} stats."
        self.latest: Any = None
        self.fetched_at: float | None = None
        # Found to be async by refresh(): sync refreshes skip it from then on.
        self.asynchronous = False

    def refresh(self) -> Any:
        """Fetch from a sync source and keep the value; returns it."""
        value = self.fetch()
        if inspect.isawaitable(value):
            close = getattr(value, "close", None)
            if close is not None:
                close()
            self.asynchronous = True
            raise MetricsError(f"{self.prefix}: the source is async; use `await arefresh()`")
        return self._keep(value)

    async def arefresh(self) -> Any:
        """Fetch from a sync or async source and keep the value; returns it."""
        value = self.fetch()
        if inspect.isawaitable(value):
            value = await value
        return self._keep(value)

    def _keep(self, value: Any) -> Any:
        self.latest = value
        self.fetched_at = time.time()
        return value

    def __call__(self) -> list[MetricSnapshot]:
        """The gauges of the latest value (none before the first refresh)."""
        latest = self.latest
        if latest is None:
            return []
        gauges: dict[str, list[Sample]] = {}
        if isinstance(latest, Mapping):
            labelnames: tuple[str, ...] = (self.label,)
            for key, value in latest.items():
                _numeric_fields(value, "", (str(key),), gauges)
        elif isinstance(latest, list | tuple):
            labelnames = (self.label,)
            for value in latest:
                _numeric_fields(value, "", (str(getattr(value, self.label, "")),), gauges)
        else:
            labelnames = ()
            _numeric_fields(latest, "", (), gauges)
        return [
            MetricSnapshot(
                name=f"{self.prefix}_{field}",
                kind="gauge",
                help=self.help,
                labelnames=labelnames,
                samples=samples,
                mode=self.modes.get(field, "sum"),
            )
            for field, samples in gauges.items()
        ]


def _numeric_fields(
    value: Any, prefix: str, labels: tuple[str, ...], out: dict[str, list[Sample]]
) -> None:
    if not isinstance(value, msgspec.Struct):
        return
    for field in value.__struct_fields__:
        item = getattr(value, field)
        name = f"{prefix}{field}"
        if isinstance(item, bool | int | float):
            out.setdefault(name, []).append(Sample(labels, float(item)))
        elif isinstance(item, msgspec.Struct):
            _numeric_fields(item, f"{name}_", labels, out)
