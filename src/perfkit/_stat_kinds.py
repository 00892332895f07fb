"""What each field of a stats Struct measures, declared where the field is.

The parts (cache, queries, jobs) annotate their stats fields, and the metrics exporter
reads the annotation, so no exporter needs an adapter per part::

    class CacheStats(msgspec.Struct):
        hits: Annotated[int, CounterField("Lookups that found a value.")]
        avg_latency_ms: Annotated[float, DurationField("Mean lookup time.", name="...")]

This module sits below every part (it imports only perfkit's errors), so a part can use it
without depending on ``perfkit.metrics``. A field without a marker is not exported.
"""

from __future__ import annotations

from typing import Literal

from perfkit._errors import ConfigError

__all__ = ["CounterField", "DurationField", "GaugeField", "StatKind"]

# How a gauge of several processes is combined (see perfkit.metrics.snapshot.merge).
Mode = Literal["sum", "max", "min", "mean", "all"]


class StatKind:
    """A field's metric kind, HELP text, exported name and scale to base units."""

    __slots__ = ("help", "kind", "mode", "name", "scale")

    kind: Literal["counter", "gauge"]

    def __init__(
        self, help: str, *, name: str | None = None, scale: float = 1.0, mode: Mode = "sum"
    ) -> None:
        if not help.strip():
            raise ConfigError("a stats field needs a HELP text saying what it measures")
        self.help = help
        # The exported name without the part's prefix; None: the field's own name.
        self.name = name
        self.scale = scale
        self.mode: Mode = mode

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.help!r}, name={self.name!r})"


class CounterField(StatKind):
    """A monotonic total (exported as a Prometheus counter named ``..._total``).

    ``scale`` turns the field's unit into the base unit (``0.001`` for a total of ms).
    """

    kind = "counter"


class GaugeField(StatKind):
    """A level that goes up and down (exported as a gauge).

    ``mode`` says how several processes combine (``sum``, ``max``, ``min``, ``mean``):
    per-process levels add up, values read from one shared server do not.
    """

    kind = "gauge"


class DurationField(StatKind):
    """A gauge holding a duration in milliseconds, exported in seconds (``..._seconds``)."""

    kind = "gauge"

    def __init__(self, help: str, *, name: str | None = None, mode: Mode = "sum") -> None:
        super().__init__(help, name=name, scale=0.001, mode=mode)
