"""Process-wide defaults: perfkit's global state department (as structlog's ``_config.py``).

Every piece of state that lives for the whole process is a :class:`Slot` declared here by
the module that uses it, so the list below is complete and one :func:`reset` puts it all
back (what tests call between cases):

=============================  =================================================================
slot                           set by
=============================  =================================================================
``cache.default``              ``perfkit.cache.set_default_cache`` (``cached_query``'s
                               service when given none, sync and async)
``cache.default_warmer``       ``perfkit.cache.register_warmer`` (a declaration)
``queries.n_plus_one``         ``perfkit.queries.set_n_plus_one_detector`` (made from
                               ``N_PLUS_ONE_THRESHOLD``)
``jobs.email_templates``       ``perfkit.jobs.builtins.register_email_template`` (a declaration)
``jobs.email_sender``          ``perfkit.jobs.builtins.set_email_sender``
``jobs.notification_sink``     ``perfkit.jobs.builtins.set_notification_sink``
``jobs.export_queries``        ``perfkit.jobs.builtins.register_export_query`` (a declaration)
``jobs.export_directory``      ``perfkit.jobs.builtins.set_export_directory``
``jobs.export_pool``           ``perfkit.jobs.builtins.set_export_pool`` (or created on
                               the first export)
``jobs.allowlist``             ``perfkit.jobs.allow_jobs``  (a declaration)
``jobs.schedule``              ``perfkit.jobs.periodic``    (a declaration)
=============================  =================================================================

*Declarations* are made once, when a module is imported (a warmer, a template, an export
query, a periodic job, the modules workers may run): :func:`reset` keeps them unless
asked, since importing the module again does not make them again. The processor registry
is not a slot: a processor is like a function definition, registered by its module's
import and refused twice under one name.

The public setters stay the way to change a default; slots are perfkit's own plumbing.
This module imports nothing of perfkit, so every layer may use it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Slot", "reset", "slot", "slots"]

T = TypeVar("T")


class Slot(Generic[T]):
    """One process-wide default: its ``value`` and how to make it anew."""

    __slots__ = ("declaration", "factory", "name", "value")

    def __init__(self, name: str, factory: Callable[[], T], *, declaration: bool) -> None:
        self.name = name
        self.factory = factory
        self.declaration = declaration
        self.value: T = factory()

    def reset(self) -> None:
        """Put the slot back to a new default value."""
        self.value = self.factory()


_slots: dict[str, Slot[Any]] = {}
_lock = threading.Lock()


def slot(name: str, factory: Callable[[], T], *, declaration: bool = False) -> Slot[T]:
    """Declare the process-wide default ``name``, starting at ``factory()``."""
    with _lock:
        if name in _slots:
            raise ValueError(f"the process-wide default {name!r} is declared twice")
        made = _slots[name] = Slot(name, factory, declaration=declaration)
        return made


def slots() -> dict[str, Slot[Any]]:
    """Every process-wide default declared so far, by name."""
    with _lock:
        return dict(_slots)


def reset(*, declarations: bool = False) -> None:
    """Put every process-wide default back to its starting value.

    Declarations made at import time (warmers, templates, export queries, the allowlist,
    the periodic schedule) are kept unless ``declarations`` is true. Nothing is closed:
    a service or pool set as a default belongs to whoever made it.
    """
    with _lock:
        for found in _slots.values():
            if declarations or not found.declaration:
                found.reset()
