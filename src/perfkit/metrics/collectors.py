"""Metrics from the stats of the other parts (cache, query pool, jobs).

Every part is a :class:`StatsSource`: ``stats()`` returns one frozen msgspec Struct. A
:class:`StatsCollector` exports each field that declares its kind with a
:class:`~perfkit._stat_kinds.CounterField`, ``GaugeField`` or ``DurationField`` marker
(``Annotated[int, CounterField("...")]``): counters as ``<prefix>_<name>_total``, gauges
as ``<prefix>_<name>``, in base units, with the marker's HELP text. A nested Struct's
fields are named ``<prefix>_<field>_<name>``; a field holding a list or mapping of Structs
(the job service's one per queue) exports their fields under ``<prefix>_<name>``, labelled.
It never imports the other subpackages: the fields say what they are, so no part needs an
adapter here.

Fetching may do I/O (the cache asks Redis for INFO), so it is separate from collecting:
:meth:`StatsCollector.refresh` (sync source) or ``await``
:meth:`AsyncPerformanceMonitor.refresh <perfkit.metrics.AsyncPerformanceMonitor.refresh>`
(any source) stores the latest value, and the registry renders that value.
"""

from __future__ import annotations

import time
import typing
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import msgspec

from perfkit._acompat import discard_awaitable
from perfkit._errors import MetricsError
from perfkit._stat_kinds import StatKind
from perfkit.metrics.snapshot import MetricSnapshot, Sample

__all__ = ["StatsCollector", "StatsSource"]


class StatsSource(Protocol):
    """What every part offers the metrics: ``stats()`` returns a Struct (or an awaitable
    of one, for the async parts). The parts also have ``reset_stats()``, which zeroes what
    they count themselves; the metrics never call it."""

    def stats(self) -> Any: ...


class StatsCollector:
    """Metrics for the declared fields of what ``fetch`` returns (see the module doc).

    ``fetch`` (a source's ``stats``) returns a msgspec Struct, a mapping of label value ->
    Struct, a list of Structs whose ``label`` field names them, or an awaitable of any of
    these. Fields without a marker, and ``None`` values, are left out.
    """

    def __init__(self, prefix: str, fetch: Callable[[], Any], *, label: str = "queue") -> None:
        self.prefix = prefix
        self.fetch = fetch
        self.label = label
        self.latest: Any = None
        self.fetched_at: float | None = None
        # Found to be async by refresh(): sync refreshes skip it from then on.
        self.asynchronous = False

    def refresh(self) -> Any:
        """Fetch from a sync source and keep the value; returns it."""
        value = self.fetch()
        if discard_awaitable(value):
            self.asynchronous = True
            raise MetricsError(
                f"{self.prefix}: the source is async; use "
                "`await AsyncPerformanceMonitor.of(monitor).refresh()`"
            )
        return self.keep(value)

    def keep(self, value: Any) -> Any:
        """Store ``value``, fetched by the caller (sync or async), as the latest; returns it."""
        self.latest = value
        self.fetched_at = time.time()
        return value

    def __call__(self) -> list[MetricSnapshot]:
        """The metrics of the latest value (none before the first refresh)."""
        latest = self.latest
        if latest is None:
            return []
        walk = _Walk(self.label)
        walk.value(latest, f"{self.prefix}_", (), ())
        return [
            MetricSnapshot(name, kind.kind, kind.help, labelnames, samples, mode=kind.mode)
            for name, (kind, labelnames, samples) in walk.found.items()
        ]


def declared_kinds(cls: type[msgspec.Struct]) -> dict[str, StatKind]:
    """The fields of a stats Struct that declare their kind, and the kind (cached)."""
    known = _kinds.get(cls)
    if known is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        known = {}
        for field in cls.__struct_fields__:
            for extra in getattr(hints.get(field), "__metadata__", ()):
                if isinstance(extra, StatKind):
                    known[field] = extra
        _kinds[cls] = known
    return known


def exported_name(prefix: str, field: str, kind: StatKind) -> str:
    """The Prometheus name of a declared field: counters end in ``_total``."""
    name = f"{prefix}{kind.name or field}"
    return f"{name}_total" if kind.kind == "counter" else name


_kinds: dict[type, dict[str, StatKind]] = {}


# A metric found: its kind, label names and samples.
_Found = tuple[StatKind, tuple[str, ...], list[Sample]]


class _Walk:
    """One walk through a stats value: ``label`` names the items of a list or mapping of
    Structs; ``found`` gathers the metrics of the declared fields met."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.found: dict[str, _Found] = {}

    def value(
        self, value: Any, prefix: str, labelnames: tuple[str, ...], labels: tuple[str, ...]
    ) -> None:
        """Add the declared fields of ``value``: a Struct's own, or, for a mapping or list
        of Structs, each one's with a ``label`` (the key, or the Struct's ``label`` field)."""
        label = self.label
        if isinstance(value, msgspec.Struct):
            self.fields(value, prefix, labelnames, labels)
        elif isinstance(value, list | tuple):
            for item in value:
                name = str(getattr(item, label, ""))
                self.value(item, prefix, (*labelnames, label), (*labels, name))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                self.value(item, prefix, (*labelnames, label), (*labels, str(key)))

    def fields(
        self,
        value: msgspec.Struct,
        prefix: str,
        labelnames: tuple[str, ...],
        labels: tuple[str, ...],
    ) -> None:
        """Add the declared fields of the Struct ``value``, and of the Structs it holds."""
        kinds = declared_kinds(type(value))
        for field in value.__struct_fields__:
            item = getattr(value, field)
            kind = kinds.get(field)
            if kind is not None:
                if isinstance(item, bool | int | float):
                    name = exported_name(prefix, field, kind)
                    sample = Sample(labels, item * kind.scale)
                    self.found.setdefault(name, (kind, labelnames, []))[2].append(sample)
            elif isinstance(item, msgspec.Struct):
                self.fields(item, f"{prefix}{field}_", labelnames, labels)
            elif item and isinstance(item, list | tuple | dict):
                # The Structs a field holds, one per label value (JobStats.queues).
                first = next(iter(item.values())) if isinstance(item, dict) else item[0]
                # (Lists of Structs without declared fields, like a pool's statements, are
                # left out at once rather than walked on every scrape.)
                if isinstance(first, msgspec.Struct) and declared_kinds(type(first)):
                    self.value(item, prefix, labelnames, labels)
