"""Metrics from the stats of the other parts (cache, query pool, jobs).

A :class:`StatsCollector` fetches a msgspec Struct (or a mapping or list of them, e.g.
one per queue) and exports each field that declares its kind with a
:class:`~perfkit._stat_kinds.CounterField`, ``GaugeField`` or ``DurationField`` marker
(``Annotated[int, CounterField("...")]``): counters as ``<prefix>_<name>_total``, gauges
as ``<prefix>_<name>``, in base units, with the marker's HELP text. It never imports the
other subpackages: the fields say what they are, so no part needs an adapter here.

Fetching may do I/O (the cache asks Redis for INFO), so it is separate from collecting:
:meth:`StatsCollector.refresh` (sync source) or ``await`` :meth:`StatsCollector.arefresh`
(async source) stores the latest value, and the registry renders that value.
"""

from __future__ import annotations

import time
import typing
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import msgspec

from perfkit._acompat import discard_awaitable, resolve
from perfkit._errors import MetricsError
from perfkit._stat_kinds import StatKind
from perfkit.metrics.snapshot import MetricSnapshot, Sample

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


class StatsCollector:
    """Metrics for the declared fields of what ``fetch`` returns (see the module doc).

    ``fetch`` returns a msgspec Struct, a mapping of label value -> Struct, a list of
    Structs whose ``label`` field names them (the job service's one per queue), or an
    awaitable of any of these. A nested Struct's fields are named
    ``<prefix>_<field>_<name>``. Fields without a marker, and ``None`` values, are left out.
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
            raise MetricsError(f"{self.prefix}: the source is async; use `await arefresh()`")
        return self._keep(value)

    async def arefresh(self) -> Any:
        """Fetch from a sync or async source and keep the value; returns it."""
        return self._keep(await resolve(self.fetch()))

    def _keep(self, value: Any) -> Any:
        self.latest = value
        self.fetched_at = time.time()
        return value

    def __call__(self) -> list[MetricSnapshot]:
        """The metrics of the latest value (none before the first refresh)."""
        latest = self.latest
        if latest is None:
            return []
        found: dict[str, tuple[StatKind, list[Sample]]] = {}
        if isinstance(latest, Mapping):
            labelnames: tuple[str, ...] = (self.label,)
            for key, value in latest.items():
                _declared_fields(value, f"{self.prefix}_", (str(key),), found)
        elif isinstance(latest, list | tuple):
            labelnames = (self.label,)
            for value in latest:
                label = (str(getattr(value, self.label, "")),)
                _declared_fields(value, f"{self.prefix}_", label, found)
        else:
            labelnames = ()
            _declared_fields(latest, f"{self.prefix}_", (), found)
        return [
            MetricSnapshot(
                name=name,
                kind=kind.kind,
                help=kind.help,
                labelnames=labelnames,
                samples=samples,
                mode=kind.mode,
            )
            for name, (kind, samples) in found.items()
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


def _declared_fields(
    value: Any,
    prefix: str,
    labels: tuple[str, ...],
    out: dict[str, tuple[StatKind, list[Sample]]],
) -> None:
    if not isinstance(value, msgspec.Struct):
        return
    kinds = declared_kinds(type(value))
    for field in value.__struct_fields__:
        item = getattr(value, field)
        kind = kinds.get(field)
        if kind is not None:
            if isinstance(item, bool | int | float):
                name = exported_name(prefix, field, kind)
                out.setdefault(name, (kind, []))[1].append(Sample(labels, item * kind.scale))
        elif isinstance(item, msgspec.Struct):
            _declared_fields(item, f"{prefix}{field}_", labels, out)
