"""The public cache operations, each declared once: its name, its span (name and attributes),
the counters of ``CacheStats`` it bumps, and what it does while Redis is down.

The pipeline. Every public operation of a service (``_aio.py`` and its generated twin
``_sync.py``) passes through the same layers, in this order:

1. key check: the method builds the namespaced key (``_key``, ``check_key``), ttl and tags
   (``resolve_ttl``, ``validate_tags``) before anything runs; a bad one raises there.
2. L1: the method's own step on the near cache (a lookup, or an eviction before a write).
3. telemetry: ``_run(operation, call, *args)`` calls the telemetry hook
   (``perfkit._telemetry.cache_operation``) around the rest, with the attributes declared
   here (``before`` from the arguments, ``after`` from the result): counts and hits, never
   a key or a value.
4. fallback and stats: ``_apply(operation, on_redis, in_memory, refused)`` sends the Redis
   call, or -- while Redis is down -- the memory store's, as ``down`` declares; a Redis
   refusal is counted in ``errors``, logged and answered by ``refused``; the result of
   either call is added to the counter ``adds`` names. (Lookups, ``hits`` and ``misses``,
   are counted where they are timed, from after the L1 step to the answer: ``_get``,
   ``_get_many`` and ``_get_or_load`` call ``CacheCounters.lookup``.)
5. Redis: the operation's own call (``on_redis``).

A new operation is its entry here (add it to ``OPERATIONS``), its method (key check, L1
step, ``_run``) and its Redis call through ``_apply``. A new counter is one field of
``CacheStats`` (``_stats.py``); an operation counts into it by naming it in ``adds``.

The hit path keeps a hand-inlined lane of these layers: ``get`` and ``@cached_query`` answer
an L1 hit before ``_run`` while no hook listens, and ``_lookup_one`` (the read of every
Redis hit) inlines ``_apply``'s fallback with ``GET``'s policy. ``tests/cache/test_pipeline.py``
proves that they decide as the layers do.

Invariants a change must keep:

- Tag generation keys outlive their entries: every write under a tag extends the tag's key
  to the entry's ttl plus ``TAG_MARGIN_MS`` (``PEXPIRE .. GT``; no expiry for an entry
  without one), and so does ``touch``. A generation key that is gone anyway (evicted) makes
  its entries misses, never stale.
- Invalidation is not expiry: after ``delete``, ``invalidate_tags`` or
  ``invalidate_pattern`` the old value is never served, not even inside a stale window;
  only an expired entry is served stale.
- While Redis is down, every change (``down=REPLAY``) is recorded in the memory store and
  replayed on Redis before the service trusts it again (keys deleted, tags invalidated,
  patterns unlinked; the whole namespace past ``MAX_PENDING``), so no value from before the
  outage, nor one it replaced, is served afterwards. A read (``down=MEMORY``) is answered
  from the memory store and changes nothing to replay.
- A change Redis refuses while reachable (full, read-only) is never lost: what it covers is
  a miss in this process until the background worker applies it (``_block``).
- Redis errors are never raised to a caller (``ping`` aside): an outage falls back, a
  refusal is counted in ``errors``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from typing import Any

from perfkit.cache._codec import MISSING

__all__ = ["OPERATIONS", "Down", "Operation", "policy_table"]

Attributes = Mapping[str, bool | int | str]

HIT = "perfkit.cache.hit"  # the value was found (not computed, not missing)
HITS = "perfkit.cache.hits"  # how many of the keys were found
KEYS = "perfkit.cache.keys"  # how many keys the operation was given
TAGS = "perfkit.cache.tags"  # how many tags
REMOVED = "perfkit.cache.removed"  # how many keys it deleted


class Down(enum.Enum):
    """What an operation does while Redis is down (unreachable: the service is in fallback)."""

    REPLAY = "done in the memory store, and replayed on Redis when it is back"
    MEMORY = "answered from the memory store (this process's own recent writes); no replay"


@dataclasses.dataclass(slots=True, eq=False, repr=False)
class Operation:
    """One public cache operation (see the module docstring).

    ``counters``: the ``CacheStats`` counters it may bump; ``adds``: the one its Redis (or
    memory) call's result, a count, is added to by ``_apply``; ``down``: its policy while
    Redis is down, and ``note`` what that means for it (docs/cache.md's table); ``before``
    and ``after``: its span's attributes from its method's arguments and from its result."""

    name: str
    _: dataclasses.KW_ONLY
    down: Down
    note: str
    counters: tuple[str, ...] = ()
    adds: str | None = None
    before: Callable[..., Attributes] | None = None
    after: Callable[[Any], Attributes] | None = None
    span: str = dataclasses.field(init=False)
    attributes: Attributes = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.span = f"cache {self.name}"
        # OpenTelemetry's database conventions, then perfkit's own.
        self.attributes = {"db.system.name": "redis", "db.operation.name": self.name}

    def start(self, args: tuple[Any, ...]) -> Attributes:
        """The span's attributes before the operation runs, from its method's ``args``."""
        if self.before is None:
            return self.attributes
        return {**self.attributes, **self.before(*args)}

    def outcome(self, result: Any) -> Attributes:
        """The attributes learned from what the operation's method returned."""
        return {} if self.after is None else self.after(result)

    def __repr__(self) -> str:
        return f"Operation({self.name!r})"


# Each ``before`` takes the arguments of the service method the public one runs (its
# ``_``-prefixed twin: ``get`` runs ``_get(full, key, type_)``).


def _written(mapping: Mapping[str, Any], ttl_ms: int, tags: tuple[str, ...]) -> Attributes:
    return {KEYS: len(mapping), TAGS: len(tags)}


def _loading(full: str, key: str, loader: Any, ttl: Any, plan: Any, *options: Any) -> Attributes:
    return {TAGS: len(plan.tags)}


GET = Operation(
    "get",
    counters=("hits", "misses"),
    after=lambda value: {HIT: value is not MISSING},
    down=Down.MEMORY,
    note="a refusal is a miss",
)
GET_MANY = Operation(
    "get_many",
    counters=("hits", "misses"),
    before=lambda names, fulls: {KEYS: len(fulls)},
    after=lambda found: {HITS: len(found)},
    down=Down.MEMORY,
    note="a refusal is a miss",
)
EXISTS = Operation(
    "exists",
    after=lambda found: {HIT: found},
    down=Down.MEMORY,
    note="a refusal is False",
)
SET = Operation(
    "set",
    counters=("sets",),
    adds="sets",
    before=_written,
    down=Down.REPLAY,
    note="stored in memory; replayed as a delete of the key (its old value must not come back)",
)
SET_MANY = dataclasses.replace(SET, name="set_many", note="as set")
DELETE = Operation(
    "delete",
    counters=("deletes",),
    adds="deletes",
    before=lambda fulls: {KEYS: len(fulls)},
    after=lambda removed: {REMOVED: removed},
    down=Down.REPLAY,
    note="replayed as a delete",
)
# get_or_set, cached_query (its alias) and @cached_query's calls; their method returns
# (value, whether the lookup found it).
GET_OR_SET = Operation(
    "get_or_set",
    counters=("hits", "misses", "sets"),
    before=_loading,
    after=lambda answer: {HIT: answer[1]},
    down=Down.MEMORY,
    note="looked up in memory; on a miss the loader runs without the lock and its value "
    "is stored as set stores it",
)
REFRESH = Operation(  # @cached_query's .refresh()
    "refresh",
    counters=("sets",),
    before=_loading,
    down=Down.MEMORY,
    note="the loader runs; its value is stored as set stores it",
)
INVALIDATE_TAGS = Operation(
    "invalidate_tags",
    before=lambda tags: {TAGS: len(tags)},
    down=Down.REPLAY,
    note="replayed as a delete of the tags' generation keys",
)
INVALIDATE_PATTERN = Operation(
    "invalidate_pattern",
    counters=("deletes",),
    adds="deletes",
    after=lambda removed: {REMOVED: removed},
    down=Down.REPLAY,
    note="replayed as SCAN + UNLINK of the pattern",
)
CLEAR = Operation(
    "clear",
    after=lambda removed: {REMOVED: removed},
    down=Down.REPLAY,
    note="the whole namespace is dropped when Redis is back",
)
TOUCH = Operation(
    "touch",
    counters=("touches",),
    adds="touches",
    before=lambda full, ttl_ms: {KEYS: 1},
    after=lambda existed: {HIT: existed},
    down=Down.MEMORY,
    note="True if the memory store holds the key; nothing replayed (a ttl is not a value: "
    "the copy in Redis expires when it would have); a refusal is False",
)

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
    TOUCH,
)


def policy_table() -> str:
    """The Markdown table of what each operation does while Redis is down (docs/cache.md's
    ``cache-down-policy`` region, written by tools/gen_docs.py)."""
    rows = ["| operation | while Redis is down | in detail |", "| --- | --- | --- |"]
    for operation in OPERATIONS:
        rows.append(f"| `{operation.name}` | {operation.down.name.lower()} | {operation.note} |")
    return "\n".join(rows) + "\n"
