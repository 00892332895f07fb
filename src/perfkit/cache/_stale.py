"""Serving an expired value while one refresh runs (stale-while-revalidate), keeping it when
that refresh fails (stale-if-error), and refreshing early (XFetch).

An entry written under a :class:`StalePolicy` carries the time it stops being fresh inside its
payload (``_codec.timed``) and lives in Redis ``stale_ttl`` seconds longer. A reader that finds
it expired but inside its window serves it at once and starts one background refresh; the
stampede lock makes that one refresh across every process (see ``_aio.AsyncRedisService
._revalidate``). Invalidation is not expiry: the stale copy is the same key and carries the
same tag generations as the fresh one, so ``delete``, ``invalidate_pattern`` and
``invalidate_tags`` end it with the fresh one.
"""

from __future__ import annotations

import math
import random
import threading
import time
from typing import TypedDict

from perfkit._errors import ArgumentError, ArgumentTypeError


class StaleOptions(TypedDict, total=False):
    """The stale-window keywords of ``get_or_set`` (what :meth:`StalePolicy.of` reads), for
    its overloads."""

    stale_ttl: float | None
    stale_if_error: bool
    early_refresh: float | None


# Keys whose failed refresh this process remembers (stale_if_error serves are counted
# against them) before starting over: bounded memory.
_FAILED_LIMIT = 4096
# After a failed refresh, a process waits this long before it tries that key again: a failing
# loader is not called on every stale hit.
RETRY_AFTER = 1.0


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ArgumentError(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


class StalePolicy:
    """How a call treats an expired entry: ``stale_ttl`` seconds in which it is served while
    it is refreshed, whether it is kept when that refresh fails (``stale_if_error``), and the
    XFetch ``beta`` of early refresh (``early_refresh``; None: off)."""

    __slots__ = ("early_refresh", "stale_if_error", "stale_ms", "stale_ttl")

    def __init__(
        self, stale_ttl: float | None, stale_if_error: bool, early_refresh: float | None
    ) -> None:
        self.stale_ttl = 0.0 if stale_ttl is None else _seconds("stale_ttl", stale_ttl)
        self.stale_ms = round(self.stale_ttl * 1000)
        if not isinstance(stale_if_error, bool):
            raise ArgumentTypeError(f"stale_if_error must be True or False, got {stale_if_error!r}")
        if stale_if_error and stale_ttl is None:
            raise ArgumentError(
                "stale_if_error=True needs stale_ttl (the seconds after expiry in which the "
                "old value may be served)"
            )
        self.stale_if_error = stale_if_error
        self.early_refresh = (
            None if early_refresh is None else _seconds("early_refresh", early_refresh)
        )

    @classmethod
    def of(
        cls, stale_ttl: float | None, stale_if_error: bool, early_refresh: float | None
    ) -> StalePolicy | None:
        """The policy of these arguments, or None when they ask for nothing (validated)."""
        if stale_ttl is None and early_refresh is None and stale_if_error is False:
            return None
        return cls(stale_ttl, stale_if_error, early_refresh)

    def early(self, fresh_until: float, load_seconds: float, now: float) -> bool:
        """XFetch (Vattani, Chierichetti, Lowenstein, VLDB 2015): refresh a fresh entry now
        with a probability that rises as its expiry nears, faster for a slower loader, so
        that one caller (usually) recomputes it before it expires."""
        if self.early_refresh is None:
            return False
        # -ln(U) for U in (0, 1]: exponentially distributed, mean 1.
        gap = -math.log(1.0 - random.random()) * load_seconds * self.early_refresh
        return now + gap >= fresh_until


class Refreshes:
    """The background refreshes of one service: which keys have one running in this process
    (so a process starts one per key at a time), and which keys' last refresh here failed
    while their stale value was kept (what ``stale_if_error_serves`` counts)."""

    def __init__(self) -> None:
        self._running: set[str] = set()
        self._failed: dict[str, float] = {}  # full key -> when its refresh failed (monotonic)
        self._lock = threading.Lock()

    def start(self, full: str) -> bool:
        """Claim the refresh of ``full`` in this process (False: one runs already, or the
        last one failed less than ``RETRY_AFTER`` seconds ago)."""
        with self._lock:
            failed_at = self._failed.get(full)
            if full in self._running or (
                failed_at is not None and time.monotonic() - failed_at < RETRY_AFTER
            ):
                return False
            self._running.add(full)
            return True

    def done(self, full: str, *, failed: bool) -> None:
        with self._lock:
            self._running.discard(full)
            if not failed:
                self._failed.pop(full, None)
                return
            if len(self._failed) >= _FAILED_LIMIT:
                self._failed.clear()
            self._failed[full] = time.monotonic()

    def failed(self, full: str) -> bool:
        """Whether the last refresh of ``full`` in this process failed."""
        return full in self._failed

    def __len__(self) -> int:
        return len(self._running)
