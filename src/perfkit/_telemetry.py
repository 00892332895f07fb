"""Telemetry hook slots the parts call at their one call site (global state, one reset).

Empty unless :func:`perfkit.otel.instrument` fills them, so a process without the
``otel`` extra pays one function call that returns ``None``. This module imports nothing
of perfkit, so every part may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["enqueue_meta", "reset"]

_enqueue_meta: Callable[[], dict[str, Any] | None] | None = None


def enqueue_meta() -> dict[str, Any] | None:
    """Job meta to store with a job being enqueued (the trace context), or ``None``."""
    hook = _enqueue_meta
    return None if hook is None else hook()


def set_enqueue_meta(hook: Callable[[], dict[str, Any] | None] | None) -> None:
    """Install (or, with ``None``, remove) the enqueue hook."""
    global _enqueue_meta
    _enqueue_meta = hook


def reset() -> None:
    """Remove every hook (what :func:`perfkit.otel.uninstrument` calls)."""
    set_enqueue_meta(None)
