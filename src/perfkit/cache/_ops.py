"""The public cache operations, each declared once: its name, its span (name and
attributes) and the counters of ``CacheStats`` it bumps.

A service runs every public operation through ``_run`` (in ``_aio.py`` and its generated
twin), the one place that calls the telemetry hook (``perfkit._telemetry.cache_operation``)
around it. An operation's attributes come from the arguments of the method ``_run`` calls
(``before``) and from what it returned (``after``): counts and hits, never a key or a value.
A new operation is an entry here, its method, and ``_run`` around that method.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from perfkit.cache._codec import MISSING

__all__ = ["OPERATIONS", "Operation"]

Attributes = Mapping[str, bool | int | str]

HIT = "perfkit.cache.hit"  # the value was found (not computed, not missing)
HITS = "perfkit.cache.hits"  # how many of the keys were found
KEYS = "perfkit.cache.keys"  # how many keys the operation was given
TAGS = "perfkit.cache.tags"  # how many tags
REMOVED = "perfkit.cache.removed"  # how many keys it deleted


class Operation:
    """One public cache operation (see the module docstring)."""

    __slots__ = ("_after", "_before", "attributes", "counters", "name", "span")

    def __init__(
        self,
        name: str,
        *,
        counters: tuple[str, ...] = (),
        before: Callable[..., Attributes] | None = None,
        after: Callable[[Any], Attributes] | None = None,
    ) -> None:
        self.name = name
        self.span = f"cache {name}"
        # OpenTelemetry's database conventions, then perfkit's own.
        self.attributes: Attributes = {"db.system.name": "redis", "db.operation.name": name}
        self.counters = counters
        self._before = before
        self._after = after

    def start(self, args: tuple[Any, ...]) -> Attributes:
        """The span's attributes before the operation runs, from its method's ``args``."""
        if self._before is None:
            return self.attributes
        return {**self.attributes, **self._before(*args)}

    def outcome(self, result: Any) -> Attributes:
        """The attributes learned from what the operation's method returned."""
        return {} if self._after is None else self._after(result)

    def __repr__(self) -> str:
        return f"Operation({self.name!r})"


# Each ``before`` takes the arguments of the service method the public one runs (its
# ``_``-prefixed twin: ``get`` runs ``_get(full, key, type_)``).


def _written(mapping: Mapping[str, Any], ttl_ms: int, tags: tuple[str, ...]) -> Attributes:
    return {KEYS: len(mapping), TAGS: len(tags)}


def _loading(full: str, key: str, loader: Any, ttl: Any, plan: Any, *options: Any) -> Attributes:
    return {TAGS: len(plan.tags)}


GET = Operation("get", counters=("hits", "misses"), after=lambda value: {HIT: value is not MISSING})
GET_MANY = Operation(
    "get_many",
    counters=("hits", "misses"),
    before=lambda names, fulls: {KEYS: len(fulls)},
    after=lambda found: {HITS: len(found)},
)
EXISTS = Operation("exists", after=lambda found: {HIT: found})
SET = Operation(
    "set",
    counters=("sets",),
    before=_written,
)
SET_MANY = Operation("set_many", counters=("sets",), before=_written)
DELETE = Operation(
    "delete",
    counters=("deletes",),
    before=lambda fulls: {KEYS: len(fulls)},
    after=lambda removed: {REMOVED: removed},
)
# get_or_set, cached_query (its alias) and @cached_query's calls; their method returns
# (value, whether the lookup found it).
GET_OR_SET = Operation(
    "get_or_set",
    counters=("hits", "misses", "sets"),
    before=_loading,
    after=lambda answer: {HIT: answer[1]},
)
REFRESH = Operation("refresh", counters=("sets",), before=_loading)  # @cached_query's .refresh()
INVALIDATE_TAGS = Operation("invalidate_tags", before=lambda tags: {TAGS: len(tags)})
INVALIDATE_PATTERN = Operation(
    "invalidate_pattern",
    counters=("deletes",),
    after=lambda removed: {REMOVED: removed},
)
CLEAR = Operation("clear", after=lambda removed: {REMOVED: removed})

OPERATIONS: tuple[Operation, ...] = (
    GET,
    GET_MANY,
    EXISTS,
    SET,
    SET_MANY,
    DELETE,
    GET_OR_SET,
    REFRESH,
    INVALIDATE_TAGS,
    INVALIDATE_PATTERN,
    CLEAR,
)
