"""Rendering metric snapshots in the Prometheus text format, version 0.0.4."""

from __future__ import annotations

import math
from collections.abc import Iterable

from perfkit.metrics.snapshot import MetricSnapshot

__all__ = ["CONTENT_TYPE", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of :func:`render`'s output, for a ``/metrics`` endpoint."""


def render(metrics: Iterable[MetricSnapshot]) -> str:
    """The text exposition of ``metrics``: HELP, TYPE, then one line per sample."""
    lines: list[str] = []
    for metric in metrics:
        name = metric.name
        lines.append(f"# HELP {name} {_escape_help(metric.help)}")
        lines.append(f"# TYPE {name} {metric.kind}")
        names = metric.labelnames
        for sample in metric.samples:
            pairs = [f'{n}="{_escape_value(v)}"' for n, v in zip(names, sample.labels, strict=True)]
            if metric.kind != "histogram":
                lines.append(f"{name}{_braces(pairs)} {_number(sample.value)}")
                continue
            cumulative = 0
            for bound, count in zip((*metric.bounds, math.inf), sample.counts, strict=True):
                cumulative += count
                le = f'le="{_number(bound)}"'
                lines.append(f"{name}_bucket{_braces([*pairs, le])} {_number(cumulative)}")
            lines.append(f"{name}_sum{_braces(pairs)} {_number(sample.value)}")
            lines.append(f"{name}_count{_braces(pairs)} {_number(cumulative)}")
    return "\n".join(lines) + "\n" if lines else ""


def _braces(pairs: list[str]) -> str:
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
