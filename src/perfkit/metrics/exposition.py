"""Rendering metric snapshots in the Prometheus text format (0.0.4) or OpenMetrics 1.0."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

from perfkit._histogram import exposed_indices
from perfkit.metrics.snapshot import MetricSnapshot

__all__ = ["CONTENT_TYPE", "OPENMETRICS_CONTENT_TYPE", "render", "wants_openmetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of :func:`render`'s output, for a ``/metrics`` endpoint."""

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
"""The Content-Type of ``render(..., openmetrics=True)``."""


def wants_openmetrics(accept: str | None) -> bool:
    """Whether a scraper's Accept header asks for OpenMetrics (Prometheus does by default)."""
    return accept is not None and "application/openmetrics-text" in accept.lower()


def render(metrics: Iterable[MetricSnapshot], *, openmetrics: bool = False) -> str:
    """The text exposition of ``metrics``: HELP, TYPE, then one line per sample.

    A histogram of more than 30 bounds is shown with one ``le`` per doubling
    (:func:`perfkit._histogram.exposed_indices`); its counts stay exact (cumulative).

    ``openmetrics``: OpenMetrics 1.0 instead (a counter's family is named without
    ``_total``, its samples with it; the text ends with ``# EOF``).
    """
    lines: list[str] = []
    for metric in metrics:
        name = metric.name
        family = name
        if openmetrics and metric.kind == "counter":
            family = name.removesuffix("_total")
            name = family + "_total"
        lines.append(f"# HELP {family} {_escape_help(metric.help, openmetrics)}")
        lines.append(f"# TYPE {family} {metric.kind}")
        names = metric.labelnames
        # A histogram of perfkit's layout (209 bounds) shows one ``le`` per doubling.
        exposed = exposed_indices(metric.bounds)
        bounds = (*metric.bounds, math.inf)
        for sample in metric.samples:
            pairs = [f'{n}="{_escape_value(v)}"' for n, v in zip(names, sample.labels, strict=True)]
            if metric.kind != "histogram":
                lines.append(f"{name}{_braces(pairs)} {_number(sample.value)}")
                continue
            cumulative = list(itertools.accumulate(sample.counts))
            for i in (*exposed, len(metric.bounds)):
                le = f'le="{_number(bounds[i])}"'
                lines.append(f"{name}_bucket{_braces([*pairs, le])} {_number(cumulative[i])}")
            total = cumulative[-1] if cumulative else 0
            lines.append(f"{name}_sum{_braces(pairs)} {_number(sample.value)}")
            lines.append(f"{name}_count{_braces(pairs)} {_number(total)}")
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n" if lines else ""


def _braces(pairs: list[str]) -> str:
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape_help(text: str, openmetrics: bool = False) -> str:
    escaped = text.replace("\\", "\\\\").replace("\n", "\\n")
    return escaped.replace('"', '\\"') if openmetrics else escaped


def _escape_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
