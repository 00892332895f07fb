"""Telemetry hooks: the one place in each part where an integration may observe it (global
state, one reset).

Each slot is ``None`` until a subscriber (:func:`perfkit.otel.instrument`) fills it with
:func:`subscribe`; a part calls its hook at one call site, and with the slot empty pays a
``None`` check there. Nothing of perfkit is patched. The slots and their call sites:

- ``cache_operation(span_name, attributes)``: a context manager yielding a :class:`Span`,
  around every public cache operation (declared in ``perfkit/cache/_ops.py``; run by the
  services' ``_run``);
- ``statement(summary, seconds, rows, failed, pool)``: after every statement counted by
  ``QueryStats.record`` (``summary()`` is the fingerprint's text);
- ``job_send(queue)``: around ``JobService.enqueue`` writing the job; ``job_meta()`` inside
  it gives the meta to store with the job (the trace context), or ``None``;
- ``job_process(queue, job_id, meta)``: around a worker's run of a job;
- ``job_outcome(function, queue, outcome, duration, wait)``: after a run ended, where it
  ran (``perfkit.jobs._metrics.record_outcome``; seconds, None when not known).

The metrics slots are subscribed apart (:func:`subscribe_metrics`, by
:class:`perfkit.otel.MetricsBridge`), so that tracing and the metrics bridge come and go on
their own:

- ``db_connection(event, pool, seconds)``: ``"create"`` when a pool of perfkit's opened a
  connection (``_connect``), ``"wait"`` when a checkout got one (``getconn``), ``"use"``
  when one went back (``putconn``: the time since its checkout);
- ``db_operation(summary, seconds, failed, pool)``: after every statement counted by
  ``QueryStats.record``, next to ``statement``.

This module imports nothing of perfkit, so every part may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

__all__ = [
    "NOTHING",
    "NO_SPAN",
    "Span",
    "around",
    "cache_operation",
    "db_connection",
    "db_operation",
    "job_meta",
    "job_outcome",
    "job_process",
    "job_send",
    "reset",
    "statement",
    "subscribe",
    "subscribe_metrics",
]


class Span(Protocol):
    """What an around hook yields: where the part reports what it learned while running."""

    def set_attribute(self, key: str, value: bool | int | str, /) -> None:
        """Record a fact about the operation (a count, a hit; never a key or a value)."""
        ...

    def set_error(self, description: str, /) -> None:
        """Mark the operation failed without an exception (a job that failed)."""
        ...


class _NoSpan:
    """The span of an empty slot: records nothing."""

    def set_attribute(self, key: str, value: bool | int | str, /) -> None:
        pass

    def set_error(self, description: str, /) -> None:
        pass


Around = AbstractContextManager[Span]

NO_SPAN: Span = _NoSpan()
NOTHING: Around = nullcontext(NO_SPAN)
"""The context of an empty slot (reusable: ``nullcontext`` keeps no state)."""

cache_operation: Callable[[str, Mapping[str, bool | int | str]], Around] | None = None
statement: Callable[[Callable[[], str], float, int, bool, str], None] | None = None
job_send: Callable[[str], Around] | None = None
job_meta: Callable[[], dict[str, Any] | None] | None = None
job_process: Callable[[str, str, Mapping[str, Any]], Around] | None = None
db_connection: Callable[[str, str, float], None] | None = None
db_operation: Callable[[Callable[[], str], float, bool, str], None] | None = None
job_outcome: Callable[[str, str, str, float | None, float | None], None] | None = None


def around(hook: Callable[..., Around] | None, *args: Any) -> Around:
    """``hook(*args)``, or a context yielding :data:`NO_SPAN` when the slot is empty (for
    call sites off the hot path)."""
    return NOTHING if hook is None else hook(*args)


def subscribe(
    *,
    cache_operation: Callable[[str, Mapping[str, bool | int | str]], Around] | None = None,
    statement: Callable[[Callable[[], str], float, int, bool, str], None] | None = None,
    job_send: Callable[[str], Around] | None = None,
    job_meta: Callable[[], dict[str, Any] | None] | None = None,
    job_process: Callable[[str, str, Mapping[str, Any]], Around] | None = None,
    job_outcome: Callable[[str, str, str, float | None, float | None], None] | None = None,
) -> None:
    """Fill every tracing slot with the hook given (``None``: empty it)."""
    # Each parameter is the slot of its name, and nothing else is local yet.
    globals().update(locals())


def subscribe_metrics(
    *,
    db_connection: Callable[[str, str, float], None] | None = None,
    db_operation: Callable[[Callable[[], str], float, bool, str], None] | None = None,
) -> None:
    """Fill every metrics slot with the hook given (``None``: empty it)."""
    globals().update(locals())  # each parameter is the slot of its name


def reset() -> None:
    """Empty every slot, tracing and metrics."""
    subscribe()
    subscribe_metrics()
