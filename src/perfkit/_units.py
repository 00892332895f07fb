"""The unit of work the running code belongs to: one request, or one run of a job.

The request middleware (ASGI, WSGI, Django's) and the job worker open a :class:`Unit`
around what they run; the parts note in it what they see while it runs (the statement
recorder counts statements by fingerprint there, to find N+1 patterns: see
``perfkit.queries._nplusone``). A ContextVar carries it, so every asyncio task and every
thread has its own, and work a request hands to a thread pool that copies the context
(Starlette's sync endpoints, asgiref's ``sync_to_async``) still notes into the request's.

This module imports nothing of perfkit, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar, Token
from typing import Any, Protocol

__all__ = ["Tally", "Unit", "begin", "current", "end", "unit_of_work"]


class Tally(Protocol):
    """What the statement recorder keeps in a unit while it runs (the N+1 detector's
    counts, or nothing when detection is off); told the unit's name when it ends."""

    def note(self, key: str | bytes, seconds: float, stats: Any) -> None:
        """Count one statement of SQL text ``key`` that took ``seconds``, recorded by
        ``stats`` (a ``QueryStats``: it knows the text's fingerprint)."""
        ...

    def finish(self, kind: str, name: str) -> None:
        """The unit ended: ``kind`` (``"request"``, ``"job"``) named ``name`` (the route
        template, the job's function)."""
        ...


class Unit:
    """One unit of work: its kind, whether it is still running, and the parts' tally."""

    __slots__ = ("kind", "open", "tally", "token")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.open = True
        self.tally: Tally | None = None
        self.token: Token[Unit | None] | None = None


current: ContextVar[Unit | None] = ContextVar("perfkit_unit", default=None)


def begin(kind: str) -> Unit | None:
    """Open a unit of ``kind`` in this context; ``None`` (nothing to end) when one is
    open already: a Django middleware inside perfkit's WSGI one is the same request."""
    found = current.get()
    if found is not None and found.open:
        return None
    unit = Unit(kind)
    unit.token = current.set(unit)
    return unit


def end(unit: Unit | None, name: str) -> None:
    """Close ``unit`` (from :func:`begin`; ``None`` does nothing) and tell its tally its
    name. A unit ended in another context than the one that opened it (a WSGI body
    closed by another thread) stays set there but closed: nothing notes into it."""
    if unit is None or not unit.open:
        return
    unit.open = False
    if unit.token is not None:
        with suppress(ValueError):
            current.reset(unit.token)
    tally = unit.tally
    if tally is not None:
        tally.finish(unit.kind, name)


@contextmanager
def unit_of_work(kind: str, name: str) -> Iterator[None]:
    """Run the block as one unit of work of ``kind`` named ``name`` (a job run, a
    command): statements repeated in it are reported as N+1 findings under ``name``."""
    unit = begin(kind)
    try:
        yield
    finally:
        end(unit, name)
