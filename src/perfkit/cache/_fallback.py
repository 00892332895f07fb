"""The in-process store used while Redis is unreachable, and what to replay when it is back.

Bounded (LRU by entries) with short TTLs, so a process serves its own recent values during an
outage. Tags are honoured with local generations. Everything this process changed while Redis
was away (keys written or deleted, tags and patterns invalidated) is remembered, bounded, and
applied to Redis before the service trusts it again -- so no value from before the outage, and
none it replaced, is served afterwards.

The same record holds what Redis refused while it was reachable (a write refused by a full or
read-only server whose old entry could not be deleted either): those keys, tags and patterns
are also *blocked* -- reads of what they cover are misses -- until they have been applied.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

# Past this many remembered changes, the whole namespace is dropped on reconnect instead.
MAX_PENDING = 10_000


class _Entry:
    __slots__ = ("expires", "gens", "payload")

    def __init__(self, payload: bytes, expires: float, gens: dict[str, int]) -> None:
        self.payload = payload
        self.expires = expires
        self.gens = gens


class Pending:
    """What to do to Redis on reconnect, collected while it was away."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.tags: set[str] = set()
        self.patterns: set[str] = set()
        self.overflow = False

    def add(
        self, keys: Iterable[str] = (), tags: Iterable[str] = (), patterns: Iterable[str] = ()
    ) -> None:
        if self.overflow:
            return
        self.keys.update(keys)
        self.tags.update(tags)
        self.patterns.update(patterns)
        if len(self.keys) + len(self.tags) + len(self.patterns) > MAX_PENDING:
            self.drop_all()

    def drop_all(self) -> None:
        """Remember to drop the whole namespace instead."""
        self.overflow = True
        self.keys.clear()
        self.tags.clear()
        self.patterns.clear()

    def covers(self, full: str, tags: Iterable[str]) -> bool:
        """Whether the entry at ``full`` guarded by ``tags`` is one of these changes."""
        return (
            self.overflow
            or full in self.keys
            or any(tag in self.tags for tag in tags)
            or any(fnmatch.fnmatchcase(full, pattern) for pattern in self.patterns)
        )

    def __bool__(self) -> bool:
        return self.overflow or bool(self.keys or self.tags or self.patterns)


class MemoryStore:
    """A thread-safe LRU of encoded payloads with TTLs and tag generations."""

    def __init__(self, max_entries: int, max_ttl: float) -> None:
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._tag_gens: dict[str, int] = {}
        self._lock = threading.Lock()
        self.pending = Pending()
        self._blocked = Pending()
        # Whether any change Redis refused is still to apply (read on every hit: a bool).
        self.blocking = False

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.expires <= time.monotonic() or any(
                self._tag_gens.get(tag, 0) != gen for tag, gen in entry.gens.items()
            ):
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry.payload

    def set(self, key: str, payload: bytes, ttl: float, tags: Iterable[str]) -> None:
        # ttl 0 (no expiry in Redis) still expires here: the store must stay short-lived.
        lifetime = self.max_ttl if ttl <= 0 else min(ttl, self.max_ttl)
        with self._lock:
            gens = {tag: self._tag_gens.get(tag, 0) for tag in tags}
            self._entries[key] = _Entry(payload, time.monotonic() + lifetime, gens)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            self.pending.add(keys=[key])

    def delete(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        with self._lock:
            removed = sum(self._entries.pop(key, None) is not None for key in keys)
            self.pending.add(keys=keys)
            return removed

    def invalidate_tags(self, tags: Iterable[str]) -> None:
        tags = list(tags)
        with self._lock:
            for tag in tags:
                self._tag_gens[tag] = self._tag_gens.get(tag, 0) + 1
            self.pending.add(tags=tags)

    def invalidate_pattern(self, pattern: str) -> int:
        """Remove keys matching the glob ``pattern`` (full, namespaced keys)."""
        with self._lock:
            doomed = [key for key in self._entries if fnmatch.fnmatchcase(key, pattern)]
            for key in doomed:
                del self._entries[key]
            self.pending.add(patterns=[pattern])
            return len(doomed)

    def refused(
        self,
        keys: Iterable[str] = (),
        tags: Iterable[str] = (),
        patterns: Iterable[str] = (),
        *,
        everything: bool = False,
    ) -> None:
        """Record changes Redis refused: pending, and blocked until applied."""
        keys, tags, patterns = list(keys), list(tags), list(patterns)
        with self._lock:
            for record in (self.pending, self._blocked):
                if everything:
                    record.drop_all()
                record.add(keys, tags, patterns)
            self.blocking = True

    def blocks(self, full: str, tags: Iterable[str]) -> bool:
        """Whether a refused change not applied yet covers the entry at ``full``."""
        with self._lock:
            return self.blocking and self._blocked.covers(full, tags)

    def applied(self) -> None:
        """Pending changes were applied: unblock everything unless more arrived meanwhile."""
        with self._lock:
            if not self.pending:
                self._blocked = Pending()
                self.blocking = False

    def take_pending(self) -> Pending:
        """Hand over the remembered changes, leaving an empty record."""
        with self._lock:
            pending, self.pending = self.pending, Pending()
            return pending

    def give_back(self, pending: Pending) -> None:
        """Return changes that could not be applied (Redis went away again) to the record."""
        with self._lock:
            if pending.overflow:
                self.pending.overflow = True
            self.pending.add(pending.keys, pending.tags, pending.patterns)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._tag_gens.clear()

    def __len__(self) -> int:
        return len(self._entries)
